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


@hookspec
def kombu_connection_established(connection: Any, url: str) -> None:
    """A :class:`~kombu.Connection` connected to its broker.

    Called after every successful connect: the first one, each reconnect
    and each connect to an alternate after a failover.  ``url`` is
    ``connection.as_uri()`` (password masked).
    """


@hookspec
def kombu_connection_lost(connection: Any, url: str, exc: BaseException | None) -> None:
    """A connection that was in use failed and is about to be replaced.

    Called when an operation wrapped by :meth:`Connection.ensure
    <kombu.Connection.ensure>` (``publish(retry=True)``, ``autoretry``)
    fails with a recoverable connection error (``exc``), or when a
    connection found dead is replaced by a reconnect (``exc`` is ``None``).
    ``url`` is the broker that was lost (password masked).
    """


@hookspec
def kombu_connection_failover(connection: Any, from_url: str, to_url: str,
                              reason: BaseException | None) -> None:
    """A connection moved to the next URL of its alternates.

    ``from_url`` and ``to_url`` are masked URLs; ``reason`` is the error
    that made it move on.  Called before connecting to ``to_url``.
    """


@hookspec
def kombu_before_publish(producer: Any, connection: Any, exchange: str, routing_key: str,
                         headers: MutableMapping[str, Any], properties: Mapping[str, Any],
                         body_size: int, content_type: str | None, priority: int) -> None:
    """A message is about to be published.

    Called once per :meth:`Producer.publish <kombu.Producer.publish>`, after
    serialization and compression and before the message is sent (a
    ``retry=True`` publish that reconnects is still one call).  ``headers``
    are the message's application headers and may be changed here (a tracer
    injects its context): they are a copy, the caller's dict is not
    modified.  ``body_size`` is the length of the encoded body in bytes.
    """


@hookspec
def kombu_after_publish(producer: Any, connection: Any, exchange: str, routing_key: str,
                        headers: Mapping[str, Any], properties: Mapping[str, Any],
                        body_size: int, content_type: str | None, priority: int,
                        exc: BaseException | None) -> None:
    """A publish finished: ``exc`` is ``None`` if it succeeded, else the error it raises."""


@hookspec
def kombu_message_delivered(consumer: Any, message: Any, queue: str | None, exchange: str,
                            routing_key: str, headers: Mapping[str, Any], delivery_tag: Any,
                            body_size: int, redelivered: bool) -> None:
    """A :class:`~kombu.Consumer` received a message, before decoding and callbacks.

    ``queue`` is the name of the queue it was consumed from (``None`` if
    unknown); ``headers`` are the message's application headers (a tracer
    extracts its context here).
    """


@hookspec
def kombu_message_handled(consumer: Any, message: Any, queue: str | None,
                          exc: BaseException | None) -> None:
    """The consumer's callbacks (or ``on_message``) returned or raised for a message.

    Called once after every :func:`kombu_message_delivered`; ``exc`` is the
    exception the callbacks raised (it still propagates), else ``None``.
    """


@hookspec
def kombu_message_acked(message: Any, delivery_tag: Any, multiple: bool) -> None:
    """:meth:`Message.ack <kombu.Message.ack>` acknowledged a message."""


@hookspec
def kombu_message_rejected(message: Any, delivery_tag: Any) -> None:
    """:meth:`Message.reject <kombu.Message.reject>` dropped (or dead-lettered) a message."""


@hookspec
def kombu_message_requeued(message: Any, delivery_tag: Any) -> None:
    """:meth:`Message.requeue <kombu.Message.requeue>` or ``reject(requeue=True)`` put a
    message back in its queue."""


@hookspec
def kombu_consumer_started(consumer: Any, queue: str, consumer_tag: str, no_ack: bool) -> None:
    """A consumer started consuming from ``queue`` (once per queue)."""


@hookspec
def kombu_consumer_cancelled(consumer: Any, queue: str, consumer_tag: str) -> None:
    """A consumer stopped consuming from ``queue`` (``cancel()``, ``cancel_by_queue()``)."""
