"""The hooks a transport plugin implements.

A plugin is a module named by an entry point in the ``kombu.transports``
group.  It imports no broker client; it only tells kombu where its
transports live::

    import kombu

    @kombu.hookimpl
    def kombu_register_transports(register):
        register("redis", "kombu_redis.transport:Transport",
                 aliases=("rediss", "sentinel"), api=(1, 0))

Implementations may accept fewer arguments than a spec names, so specs can
grow new arguments without breaking published plugins.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT_NAME = "kombu"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ("PROJECT_NAME", "hookimpl", "hookspec")


@hookspec
def kombu_register_transports(register: Callable[..., None]) -> None:
    """Register the transports this plugin provides.

    Call ``register(name, target, aliases=(), api=(1, 0))`` once per
    transport.  ``target`` is a ``"module:Class"`` string, imported only when
    the transport is first used, or the class itself.  ``aliases`` are
    further names and URL schemes that select the transport.  ``api`` is the
    version of kombu's transport interface the plugin was written for
    (:data:`kombu.TRANSPORT_API`): the major must equal the core's and the
    minor must not exceed it.
    """
