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

from collections.abc import Mapping, MutableMapping
from typing import Any, Callable

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


@hookspec(firstresult=True)
def kombu_parse_url(scheme: str, url: str) -> Mapping[str, Any] | None:
    """Parse ``url`` for a transport that owns ``scheme``.

    Return the connection keyword arguments (``hostname``, ``port``,
    ``userid``, ``password``, ``virtual_host``, ``transport`` and any
    transport options) or ``None`` to let kombu parse it.  The first
    plugin to return a mapping wins.
    """


@hookspec
def kombu_connection_defaults(transport: str, options: MutableMapping[str, Any]) -> None:
    """Adjust the keyword arguments of a new :class:`~kombu.Connection`.

    Called with the transport name (the URL scheme or ``transport=``) and
    the mutable mapping of connection options (``hostname``, ``userid``,
    ``password``, ``virtual_host``, ``port``, ``ssl``, ``connect_timeout``,
    ``login_method``, ``heartbeat``) before the connection is set up, so a
    plugin can supply defaults that depend on the URL scheme.
    """
