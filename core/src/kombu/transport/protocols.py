"""Typed contracts of the transport plugin API (``TRANSPORT_API`` 1.0).

:class:`ChannelProtocol` is what the core calls on every channel, virtual or
not, and :class:`TransportErrors` the error tuples it reads from a
transport; :class:`QueuePrimitives` is what a virtual transport's
``Channel`` implements; :class:`RegisterTransport` is the ``register``
callable a plugin's ``kombu_register_transports`` hook receives.  All are
:class:`typing.Protocol` classes, for type checkers and ``isinstance``.

A plugin states that its channel keeps the contract with a check that only
the type checker runs::

    if TYPE_CHECKING:
        def _keeps_the_contract(channel: Channel) -> ChannelProtocol:
            return channel
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from kombu.message import Message
    from kombu.transport.base import queue_declare_ok_t

__all__ = ("ChannelProtocol", "QueuePrimitives", "RegisterTransport", "TransportErrors")

#: An error class, as the error tuples hold them.
ErrorClass = type[BaseException]


class TransportErrors(Protocol):
    """The error tuples of a transport, read by :class:`~kombu.Connection`.

    ``connection_errors`` are the exceptions meaning "this connection is
    unusable": ``ensure``, ``ensure_connection``, ``autoretry`` and
    ``default_channel`` reconnect on them.  ``channel_errors`` mean "this
    operation failed, the connection is fine": they are raised to the
    caller (``ensure`` retries them on the same connection).
    """

    connection_errors: tuple[ErrorClass, ...]
    channel_errors: tuple[ErrorClass, ...]


@runtime_checkable
class ChannelProtocol(Protocol):
    """The operations the core calls on a channel: the channel contract.

    ``Connection.channel()`` returns one (made by the transport's
    ``create_channel``); :class:`~kombu.Exchange`, :class:`~kombu.Queue`,
    :class:`~kombu.Producer`, :class:`~kombu.Consumer`,
    :class:`~kombu.message.Message` and ``SimpleQueue`` call these methods
    on it, with the arguments shown (those after ``*`` always by keyword).
    A transport that does not build on :mod:`kombu.transport.virtual`
    implements them all; the virtual ``Channel`` implements them on top of
    :class:`QueuePrimitives`.

    Errors: a method raises one of its transport's ``connection_errors``
    when the connection is lost (the caller may reconnect and retry) and
    one of its ``channel_errors`` when the broker refused the operation
    (a missing queue on a passive declare, a bad argument).  A message
    given to ``basic_publish`` is what ``prepare_message`` returned, and a
    message that ``basic_get`` returns or a consumer's callback receives is
    passed through ``message_to_python`` before user code sees it.
    """

    #: The transport (or driver connection) this channel belongs to; its
    #: ``client`` attribute is the :class:`~kombu.Connection`.
    connection: Any

    def exchange_declare(self, exchange: str = ..., *, type: str = ..., durable: bool = ...,
                         auto_delete: bool = ..., arguments: dict[str, Any] | None = ...,
                         nowait: bool = ..., passive: bool = ...) -> Any:
        """Declare ``exchange`` (``passive``: only check that it exists)."""

    def exchange_delete(self, exchange: str, *, if_unused: bool = ...,
                        nowait: bool = ...) -> Any:
        """Delete ``exchange`` (``if_unused``: only when nothing is bound to it)."""

    def exchange_bind(self, *, destination: str, source: str = ..., routing_key: str = ...,
                      nowait: bool = ..., arguments: dict[str, Any] | None = ...) -> Any:
        """Bind exchange ``destination`` to exchange ``source``; may raise
        :exc:`NotImplementedError` where the broker has no such bindings."""

    def exchange_unbind(self, *, destination: str, source: str = ..., routing_key: str = ...,
                        nowait: bool = ..., arguments: dict[str, Any] | None = ...) -> Any:
        """Remove a binding made by :meth:`exchange_bind`."""

    def queue_declare(self, queue: str = ..., passive: bool = ..., *, durable: bool = ...,
                      exclusive: bool = ..., auto_delete: bool = ...,
                      arguments: dict[str, Any] | None = ..., nowait: bool = ...
                      ) -> queue_declare_ok_t | None:
        """Declare ``queue``; return ``(queue, message_count, consumer_count)``
        (``None`` with ``nowait``).  An empty name asks the broker for one."""

    def queue_bind(self, queue: str, exchange: str, routing_key: str = ..., *,
                   arguments: dict[str, Any] | None = ..., nowait: bool = ...) -> Any:
        """Route messages of ``exchange`` that match ``routing_key`` to ``queue``."""

    def queue_unbind(self, queue: str, exchange: str, routing_key: str = ..., *,
                     arguments: dict[str, Any] | None = ..., nowait: bool = ...) -> Any:
        """Remove a binding made by :meth:`queue_bind`."""

    def queue_purge(self, queue: str, *, nowait: bool = ...) -> int | None:
        """Remove the ready messages of ``queue``; return how many (or ``None``)."""

    def queue_delete(self, queue: str, *, if_unused: bool = ..., if_empty: bool = ...,
                     nowait: bool = ...) -> Any:
        """Delete ``queue`` (only if unused, or empty, when asked)."""

    def prepare_queue_arguments(self, arguments: dict[str, Any] | None,
                                **kwargs: Any) -> dict[str, Any] | None:
        """The broker's queue arguments for ``arguments`` plus the keyword
        options ``expires``, ``message_ttl``, ``max_length``,
        ``max_length_bytes`` and ``max_priority`` (``None``: not set)."""

    def prepare_message(self, body: Any, priority: int | None = ...,
                        content_type: str | None = ..., content_encoding: str | None = ...,
                        headers: dict[str, Any] | None = ...,
                        properties: dict[str, Any] | None = ...) -> Any:
        """The transport's message for an encoded ``body`` and its properties,
        ready for :meth:`basic_publish`."""

    def basic_publish(self, message: Any, exchange: str, routing_key: str,
                      **kwargs: Any) -> Any:
        """Publish ``message`` to ``exchange`` (``''``: the default exchange)
        with ``routing_key``.  Keyword options: ``mandatory``, ``immediate``,
        and, when the producer sets them, ``timeout`` and ``confirm_timeout``."""

    def basic_consume(self, queue: str, no_ack: bool, *, callback: Callable[[Any], Any],
                      consumer_tag: str, **kwargs: Any) -> str:
        """Start delivering messages of ``queue`` to ``callback``; return the
        consumer tag (``consumer_tag``, or one the broker chose when empty).
        Keyword options: ``nowait``, ``arguments`` and ``on_cancel``."""

    def basic_cancel(self, consumer_tag: str) -> Any:
        """Stop the consumer ``consumer_tag``."""

    def basic_get(self, queue: str, no_ack: bool = ...) -> Any:
        """Take one message from ``queue`` (a raw message for
        :meth:`message_to_python`), or return ``None`` when it is empty."""

    def basic_ack(self, delivery_tag: Any, multiple: bool = ...) -> Any:
        """Acknowledge the message ``delivery_tag`` (and earlier ones with ``multiple``)."""

    def basic_reject(self, delivery_tag: Any, requeue: bool) -> Any:
        """Reject the message ``delivery_tag``: drop it, or give it back (``requeue``)."""

    def basic_recover(self, requeue: bool = ...) -> Any:
        """Redeliver the unacknowledged messages of this channel."""

    def basic_qos(self, prefetch_size: int, prefetch_count: int, apply_global: bool) -> Any:
        """Limit the unacknowledged messages delivered to this channel."""

    def flow(self, active: bool) -> Any:
        """Pause (``False``) or resume deliveries; may raise :exc:`NotImplementedError`."""

    def message_to_python(self, raw_message: Any) -> Message:
        """The :class:`~kombu.message.Message` for a raw message of this channel."""

    def after_reply_message_received(self, queue: str) -> None:
        """Called when an RPC reply arrived on ``queue`` (the channel may delete it)."""

    def close(self) -> Any:
        """Close the channel; closing a closed channel does nothing."""


@runtime_checkable
class QueuePrimitives(Protocol):
    """The store operations kombu's virtual layer calls on a channel."""

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        """Create ``queue`` if missing (``queue_declare``)."""

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        """Whether ``queue`` exists (``queue_declare(passive=True)``)."""

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        """Append ``message`` at the tail of ``queue``."""

    def _put_at_head(self, queue: str, message: dict[str, Any]) -> None:
        """Put a requeued or restored ``message`` at the head of ``queue``."""

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """Remove and return the head of ``queue`` atomically; raise ``queue.Empty``."""

    def _size(self, queue: str) -> int:
        """The number of messages ready in ``queue``."""

    def _purge(self, queue: str) -> int:
        """Remove every ready message of ``queue``; return how many."""

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        """Remove ``queue`` and its messages (called once per binding: idempotent)."""


class RegisterTransport(Protocol):
    """``register(name, target, aliases=(), api=(1, 0))`` of the registration hook."""

    def __call__(self, name: str, target: str | type, aliases: Iterable[str] = ...,
                 api: Iterable[int] = ...) -> None:
        """Register transport ``name`` (``target``: ``'module:Class'`` or the class)."""
