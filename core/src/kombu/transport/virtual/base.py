"""The virtual transport: AMQP semantics over a plain queue store.

A virtual transport implements a few queue primitives on its
:class:`Channel` (``_put``, ``_get``, ``_size``, ``_purge``, ``_delete``,
``_new_queue``, ``_has_queue``; fanout transports also ``_put_fanout`` and
``_queue_bind``) and inherits the rest: exchanges and bindings, routing,
consumers, prefetch limits, acknowledgement emulation and redelivery of
unacknowledged messages.  The method names and signatures are kombu 5.x's,
so a transport written for kombu's virtual layer runs here unchanged.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
import warnings
from array import array
from collections import OrderedDict, defaultdict, namedtuple
from collections.abc import Iterator
from itertools import count
from queue import Empty
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any, Callable
from uuid import uuid4

from kombu.exceptions import ChannelError, ResourceError
from kombu.log import get_logger
from kombu.message import Message as BaseMessage
from kombu.resource import exit_pooled
from kombu.transport import base
from kombu.transport.base import queue_declare_ok_t
from kombu.transport.virtual.exchange import STANDARD_EXCHANGE_TYPES, ExchangeType
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.scheduling import FairCycle
from kombu.utils.uuid import uuid

__all__ = (
    "AbstractChannel",
    "Base64",
    "BrokerState",
    "Channel",
    "Empty",
    "Management",
    "Message",
    "NotEquivalentError",
    "QoS",
    "Transport",
    "UndeliverableWarning",
    "binding_key_t",
    "queue_binding_t",
)

logger = get_logger(__name__)

# Names kombu 5.x transports may import from this module.
#: The ``array`` type code of channel ids.
ARRAY_TYPE_H = "H"
#: Warning text for a message no queue is bound to receive.
UNDELIVERABLE_FMT = ("Message could not be delivered: no queues bound to exchange "
                     "{exchange!r} using binding key {routing_key!r}.\n")
#: Error text for an exchange redeclared with other settings (exchange, vhost).
NOT_EQUIVALENT_FMT = ("Cannot redeclare exchange {0!r} in vhost {1!r} with a different "
                      "type, durable, auto_delete or arguments value.")
#: Log text (%-style) for a message requeued because its queue has no consumer.
W_NO_CONSUMERS = "Requeuing undeliverable message for queue %r: no consumers."
#: Log text for the restore of unacknowledged messages (count).
RESTORING_FMT = "Restoring {0!r} unacknowledged message(s)"
#: Log text for messages that could not be restored (count, errors).
RESTORE_PANIC_FMT = "UNABLE TO RESTORE {0} MESSAGES: {1}"


def emergency_dump_state(*args: Any, **kwargs: Any) -> Any:
    """:func:`kombu.utils.div.emergency_dump_state` (imported here in kombu 5.x)."""
    from kombu.utils.div import emergency_dump_state as dump

    return dump(*args, **kwargs)

binding_key_t = namedtuple("binding_key_t", ("queue", "exchange", "routing_key"))
queue_binding_t = namedtuple("queue_binding_t", ("exchange", "routing_key", "arguments"))


class Base64:
    """The ``base64`` body encoding."""

    def encode(self, s: Any) -> str:
        return bytes_to_str(base64.b64encode(str_to_bytes(s)))  # type: ignore[no-any-return]

    def decode(self, s: Any) -> bytes:
        return base64.b64decode(str_to_bytes(s))


class NotEquivalentError(Exception):
    """An entity was redeclared with different settings."""


class UndeliverableWarning(UserWarning):
    """A message reached no queue and went to the dead-letter queue."""


class BrokerState:
    """Exchanges and bindings of one virtual broker.

    ``exchanges`` maps a name to ``{'type', 'durable', 'auto_delete',
    'arguments', 'table'}``; ``bindings`` maps ``(queue, exchange,
    routing_key)`` to the binding arguments; ``queue_index`` maps a queue to
    its binding keys.
    """

    def __init__(self, exchanges: dict[str, Any] | None = None) -> None:
        self.exchanges: dict[str, Any] = {} if exchanges is None else exchanges
        self.bindings: dict[binding_key_t, Any] = {}
        self.queue_index: defaultdict[str, set[binding_key_t]] = defaultdict(set)

    def clear(self) -> None:
        self.exchanges.clear()
        self.bindings.clear()
        self.queue_index.clear()

    def has_binding(self, queue: str, exchange: str, routing_key: str) -> bool:
        return (queue, exchange, routing_key) in self.bindings

    def binding_declare(self, queue: str, exchange: str, routing_key: str,
                        arguments: Any) -> None:
        key = binding_key_t(queue, exchange, routing_key)
        self.bindings.setdefault(key, arguments)
        self.queue_index[queue].add(key)

    def binding_delete(self, queue: str, exchange: str, routing_key: str) -> None:
        key = binding_key_t(queue, exchange, routing_key)
        if self.bindings.pop(key, _missing) is not _missing:
            self.queue_index[queue].discard(key)

    def queue_bindings_delete(self, queue: str) -> None:
        for key in self.queue_index.pop(queue, ()):
            self.bindings.pop(key, None)

    def queue_bindings(self, queue: str) -> Iterator[queue_binding_t]:
        return (queue_binding_t(key.exchange, key.routing_key, self.bindings[key])
                for key in list(self.queue_index.get(queue, ())))


_missing = object()


class QoS:
    """Prefetch limits and acknowledgement bookkeeping of a channel.

    Delivered messages are kept until acknowledged.  Acks may come from other
    threads than the consuming one, so an ack only marks the tag (a set add,
    atomic under the GIL) and the consuming thread drops marked messages on
    its next append.
    """

    prefetch_count = 0
    #: Restore unacknowledged messages when the channel closes.
    restore_at_shutdown = True

    def __init__(self, channel: Channel, prefetch_count: int = 0) -> None:
        self.channel = channel
        self.prefetch_count = prefetch_count or 0
        self._delivered: OrderedDict[Any, Message] = OrderedDict()
        self._restored = False
        self._dirty: set[Any] = set()
        self._quick_ack = self._dirty.add
        self._quick_append = self._delivered.__setitem__

    def can_consume(self) -> bool:
        """Whether the prefetch limit allows one more delivery."""
        pcount = self.prefetch_count
        return not pcount or len(self._delivered) - len(self._dirty) < pcount

    def can_consume_max_estimate(self) -> int | None:
        """How many more messages the prefetch limit allows (None: no limit)."""
        pcount = self.prefetch_count
        if pcount:
            return max(pcount - (len(self._delivered) - len(self._dirty)), 0)
        return None

    def append(self, message: Message, delivery_tag: Any) -> None:
        if self._dirty:
            self._flush()
        self._quick_append(delivery_tag, message)

    def get(self, delivery_tag: Any) -> Message:
        return self._delivered[delivery_tag]

    def _flush(self) -> None:
        dirty, delivered = self._dirty, self._delivered
        while dirty:
            try:
                delivered.pop(dirty.pop(), None)
            except KeyError:  # emptied by another thread
                break

    def ack(self, delivery_tag: Any) -> None:
        self._quick_ack(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if requeue:
            message = self._delivered.get(delivery_tag)
            if message is not None and delivery_tag not in self._dirty:
                self.channel._restore_at_beginning(message)
        self._quick_ack(delivery_tag)

    def restore_unacked(self) -> list[tuple[BaseException, Message]]:
        """Put every unacknowledged message back; return the failures."""
        self._flush()
        delivered, dirty = self._delivered, self._dirty
        errors: list[tuple[BaseException, Message]] = []
        restore = self.channel._restore
        # Oldest last, so that restoring at the head keeps the original order.
        while delivered:
            tag, message = delivered.popitem()
            if tag in dirty:
                continue
            try:
                restore(message)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append((exc, message))
        return errors

    def restore_unacked_once(self, stderr: Any = None) -> None:
        """Restore unacknowledged messages at shutdown (only the first call acts)."""
        self._flush()
        if self._restored or not self.restore_at_shutdown or not self.channel.do_restore:
            return
        self._restored = True
        if not self._delivered:
            return
        n = len(self._delivered)
        if stderr is not None:
            print(f"Restoring {n!r} unacknowledged message(s)", file=stderr)
        else:
            logger.info("Restoring %r unacknowledged message(s)", n)
        errors = self.restore_unacked()
        if errors:
            from kombu.utils.div import emergency_dump_state

            logger.error("UNABLE TO RESTORE %s MESSAGES: %r", len(errors),
                         [exc for exc, _ in errors])
            emergency_dump_state([m for _, m in errors], stderr=stderr)

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        """Restore messages whose visibility timeout expired (Redis-like stores)."""


class Message(BaseMessage):
    """A message as delivered by a virtual channel."""

    __slots__ = ("_raw", "_source_queue")

    #: The queue the message was consumed from (unset if unknown).
    _source_queue: str | None

    def __init__(self, payload: dict[str, Any], channel: Any = None, **kwargs: Any) -> None:
        self._raw = payload
        properties = payload["properties"]
        body = payload.get("body")
        if body:
            encoding = properties.get("body_encoding")
            if encoding and channel is not None:
                body = channel.decode_body(body, encoding)
        delivery_info = properties.get("delivery_info")
        if delivery_info is None:
            delivery_info = properties["delivery_info"] = {}
        if payload.get("redelivered"):
            delivery_info["redelivered"] = True
        super().__init__(
            body=body,
            channel=channel,
            delivery_tag=properties["delivery_tag"],
            content_type=payload.get("content-type"),
            content_encoding=payload.get("content-encoding"),
            headers=payload.get("headers"),
            properties=properties,
            delivery_info=delivery_info,
            postencode="utf-8",
            **kwargs,
        )

    def serializable(self) -> dict[str, Any]:
        """The payload to store when putting the message back."""
        props = self.properties
        body, _ = self.channel.encode_body(self.body, props.get("body_encoding"))
        headers = dict(self.headers or {})
        headers.pop("compression", None)
        return {
            "body": body,
            "properties": props,
            "content-type": self.content_type,
            "content-encoding": self.content_encoding,
            "headers": headers,
        }


class AbstractChannel:
    """The queue primitives a virtual transport implements."""

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """Remove and return the next message of ``queue``; raise :exc:`queue.Empty`."""
        raise NotImplementedError("virtual channels must implement _get")

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        """Append ``message`` to ``queue``."""
        raise NotImplementedError("virtual channels must implement _put")

    def _put_at_head(self, queue: str, message: dict[str, Any]) -> None:
        """Put a requeued or restored ``message`` back at the head of ``queue``.

        The default appends it (:meth:`_put`); a transport that can put a
        message first implements this, so redelivery keeps the queue's order.
        """
        self._put(queue, message)

    def _purge(self, queue: str) -> int:
        """Remove every message of ``queue``; return how many there were."""
        raise NotImplementedError("virtual channels must implement _purge")

    def _size(self, queue: str) -> int:
        return 0

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        self._purge(queue)

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        """Called when ``queue`` is declared."""

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return True

    def _poll(self, cycle: Any, callback: Callable[..., Any], timeout: float | None = None) -> Any:
        return cycle.get(callback)

    def _get_and_deliver(self, queue: str, callback: Callable[[Any, str], Any]) -> None:
        callback(self._get(queue), queue)

    if TYPE_CHECKING:  # pragma: no cover
        # Optional primitives of transports that set ``supports_fanout``.
        def _put_fanout(self, exchange: str, message: dict[str, Any], routing_key: str,
                        **kwargs: Any) -> None: ...

        def _queue_bind(self, exchange: str, routing_key: str, pattern: Any,
                        queue: str) -> None: ...


class _DeliveryTags:
    """Delivery tags unique across processes, cheaper than a uuid each."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = uuid4().hex
        self.counter = count(1)

    def __call__(self) -> str:
        return f"{self.prefix}.{next(self.counter)}"


_next_tag = _DeliveryTags()

# Channel's ``Message`` and ``QoS`` attributes shadow these classes in its
# body, so its signatures name them through these aliases.
_Message = Message
_QoS = QoS


class Channel(AbstractChannel, base.StdChannel):
    """A virtual channel: AMQP channel semantics over the primitives above."""

    Message: type[_Message] = _Message
    QoS: type[_QoS] = _QoS
    #: Restore unacknowledged messages when the channel closes.
    do_restore = True
    exchange_types: Any = dict(STANDARD_EXCHANGE_TYPES)
    #: True when the store broadcasts fanout messages itself (``_put_fanout``).
    supports_fanout = False
    codecs: dict[str, Any] = {"base64": Base64()}
    #: How bodies are stored (``transport_options['body_encoding']`` overrides).
    body_encoding: str | None = "base64"
    deadletter_queue: str | None = None
    #: Transport options copied onto the channel as attributes.
    from_transport_options: tuple[str, ...] = ("body_encoding", "deadletter_queue")
    default_priority = 0
    min_priority = 0
    max_priority = 9

    def __init__(self, connection: Transport, **kwargs: Any) -> None:
        self.connection = connection
        self._consumers: set[str] = set()
        self._cycle: FairCycle | None = None
        self._tag_to_queue: dict[str, str] = {}
        self._active_queues: list[str] = []
        self._qos: QoS | None = None
        self.closed = False
        self.exchange_types = {typ: cls(self) for typ, cls in self.exchange_types.items()}
        self.channel_id = self._get_free_channel_id()
        options = connection.client.transport_options if connection.client else {}
        for name in self.from_transport_options:
            if name in options:
                setattr(self, name, options[name])

    # -- exchanges -----------------------------------------------------------
    def exchange_declare(self, exchange: str | None = None, type: str = "direct",
                         durable: bool = False, auto_delete: bool = False,
                         arguments: dict[str, Any] | None = None, nowait: bool = False,
                         passive: bool = False) -> None:
        type = type or "direct"
        exchange = exchange or f"amq.{type}"
        exchanges = self.state.exchanges
        if passive:
            if exchange not in exchanges:
                raise ChannelError(
                    f"NOT_FOUND - no exchange {exchange!r} in vhost {self._vhost!r}")
            return
        if type not in self.exchange_types:
            raise ChannelError(
                f"exchange type {type!r} is not supported by this transport "
                f"(supported: {', '.join(sorted(self.exchange_types))})")
        prev = exchanges.get(exchange)
        if prev is None:
            exchanges[exchange] = {"type": type, "durable": durable,
                                   "auto_delete": auto_delete,
                                   "arguments": arguments or {}, "table": []}
        elif not self.typeof(exchange).equivalent(prev, exchange, type, durable,
                                                  auto_delete, arguments):
            raise NotEquivalentError(
                f"Cannot redeclare exchange {exchange!r} in vhost {self._vhost!r} with "
                "a different type, durable, auto_delete or arguments value.")

    def exchange_delete(self, exchange: str, if_unused: bool = False,
                        nowait: bool = False) -> None:
        for _, _, queue in list(self.get_table(exchange)) if exchange in self.state.exchanges else ():
            self.queue_delete(queue, if_unused=True, if_empty=True)
        self.state.exchanges.pop(exchange, None)

    def exchange_bind(self, destination: str, source: str = "", routing_key: str = "",
                      nowait: bool = False, arguments: dict[str, Any] | None = None) -> None:
        raise NotImplementedError("virtual transports do not support exchange_bind")

    def exchange_unbind(self, destination: str, source: str = "", routing_key: str = "",
                        nowait: bool = False, arguments: dict[str, Any] | None = None) -> None:
        raise NotImplementedError("virtual transports do not support exchange_unbind")

    def get_exchanges(self) -> list[str]:
        return list(self.state.exchanges)

    def get_table(self, exchange: str) -> list[tuple[Any, Any, str]]:
        """The routing table of ``exchange`` (``KeyError`` if undeclared)."""
        return self.state.exchanges[exchange]["table"]  # type: ignore[no-any-return]

    def typeof(self, exchange: str, default: str = "direct") -> ExchangeType:
        try:
            kind = self.state.exchanges[exchange]["type"]
        except KeyError:
            kind = default
        return self.exchange_types[kind]  # type: ignore[no-any-return]

    # -- queues --------------------------------------------------------------
    def queue_declare(self, queue: str | None = None, passive: bool = False,
                      **kwargs: Any) -> queue_declare_ok_t:
        queue = queue or f"amq.gen-{uuid()}"
        if passive:
            if not self._has_queue(queue, **kwargs):
                raise ChannelError(f"NOT_FOUND - no queue {queue!r} in vhost {self._vhost!r}")
        else:
            self._new_queue(queue, **kwargs)
        return queue_declare_ok_t(queue, self._size(queue), 0)

    def queue_delete(self, queue: str, if_unused: bool = False, if_empty: bool = False,
                     **kwargs: Any) -> None:
        if if_empty and self._size(queue):
            return
        exchanges = self.state.exchanges
        bindings = list(self.state.queue_bindings(queue))
        for exchange, routing_key, args in bindings:
            meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, args)
            self._delete(queue, exchange, *meta, **kwargs)
            table = exchanges.get(exchange, {}).get("table")
            if table:
                table[:] = [m for m in table if m != meta]
        if not bindings:
            # kombu 5.x deletes nothing for a queue without bindings.
            self._delete(queue, "", "", None, **kwargs)
        self.state.queue_bindings_delete(queue)

    def queue_bind(self, queue: str, exchange: str | None = None, routing_key: str = "",
                   arguments: dict[str, Any] | None = None, **kwargs: Any) -> None:
        exchange = exchange or "amq.direct"
        state = self.state
        if state.has_binding(queue, exchange, routing_key):
            return
        if exchange not in state.exchanges:
            raise ChannelError(
                f"NOT_FOUND - no exchange {exchange!r} in vhost {self._vhost!r}: "
                "declare the exchange before binding a queue to it")
        state.binding_declare(queue, exchange, routing_key, arguments)
        meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
        state.exchanges[exchange].setdefault("table", []).append(meta)
        if self.supports_fanout:
            self._queue_bind(exchange, *meta)

    def queue_unbind(self, queue: str, exchange: str | None = None, routing_key: str = "",
                     arguments: dict[str, Any] | None = None, **kwargs: Any) -> None:
        exchange = exchange or "amq.direct"
        self.state.binding_delete(queue, exchange, routing_key)
        try:
            table = self.get_table(exchange)
        except KeyError:
            return
        meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
        table[:] = [m for m in table if m != meta]

    def list_bindings(self) -> Iterator[tuple[str, str, str]]:
        return ((queue, exchange, rkey)
                for exchange in list(self.state.exchanges)
                for rkey, _, queue in self.get_table(exchange))

    def queue_purge(self, queue: str, **kwargs: Any) -> int:
        return self._purge(queue)

    def after_reply_message_received(self, queue: str) -> None:
        self.queue_delete(queue)

    # -- publishing ----------------------------------------------------------
    def prepare_message(self, body: Any, priority: int | None = None,
                        content_type: str | None = None, content_encoding: str | None = None,
                        headers: dict[str, Any] | None = None,
                        properties: dict[str, Any] | None = None) -> dict[str, Any]:
        if properties is None:
            properties = {}
        if "delivery_info" not in properties:
            properties["delivery_info"] = {}
        if "priority" not in properties:
            properties["priority"] = priority or self.default_priority
        return {"body": body, "content-encoding": content_encoding,
                "content-type": content_type, "headers": headers or {},
                "properties": properties}

    def _next_delivery_tag(self) -> str:
        return _next_tag()

    def _inplace_augment_message(self, message: dict[str, Any], exchange: str,
                                 routing_key: str) -> None:
        encoding = self.body_encoding
        props = message["properties"]
        if encoding:
            message["body"], encoding = self.encode_body(message["body"], encoding)
        props["body_encoding"] = encoding
        props["delivery_tag"] = self._next_delivery_tag()
        info = props["delivery_info"]
        info["exchange"] = exchange
        info["routing_key"] = routing_key

    def basic_publish(self, message: dict[str, Any], exchange: str, routing_key: str,
                      **kwargs: Any) -> Any:
        self._inplace_augment_message(message, exchange, routing_key)
        if exchange:
            return self.typeof(exchange).deliver(message, exchange, routing_key, **kwargs)
        # The default exchange routes to the queue named by the routing key.
        return self._put(routing_key, message, **kwargs)

    def _lookup(self, exchange: str, routing_key: str, default: str | None = None) -> Any:
        """The queues a message to ``exchange`` with ``routing_key`` reaches."""
        if default is None:
            default = self.deadletter_queue
        if not exchange:
            return [routing_key or default]
        try:
            queues = self.typeof(exchange).lookup(self.get_table(exchange), exchange,
                                                  routing_key, default)
        except KeyError:
            queues = ()
        if not queues and default is not None:
            warnings.warn(UndeliverableWarning(
                f"Message could not be delivered: no queues bound to exchange "
                f"{exchange!r} using binding key {routing_key!r}."), stacklevel=2)
            self._new_queue(default)
            queues = [default]
        return queues

    # -- consuming -----------------------------------------------------------
    def basic_consume(self, queue: str, no_ack: bool, callback: Callable[[Any], Any],
                      consumer_tag: str, **kwargs: Any) -> str:
        self._tag_to_queue[consumer_tag] = queue
        self._active_queues.append(queue)
        make_message = self.Message
        if no_ack:
            if self.no_ack_consumers is None:
                self.no_ack_consumers = set()
            self.no_ack_consumers.add(consumer_tag)

            def _callback(raw_message: Any) -> Any:
                message = make_message(raw_message, channel=self)
                message._source_queue = queue
                # Lets Message.ack() see that there is nothing to acknowledge.
                message.delivery_info["consumer_tag"] = consumer_tag
                return callback(message)
        else:
            append = self.qos.append

            def _callback(raw_message: Any) -> Any:
                message = make_message(raw_message, channel=self)
                message._source_queue = queue
                append(message, message.delivery_tag)
                return callback(message)

        self.connection._callbacks[queue] = _callback
        self._consumers.add(consumer_tag)
        self._reset_cycle()
        return consumer_tag

    def basic_cancel(self, consumer_tag: str) -> None:
        if consumer_tag in self._consumers:
            self._consumers.remove(consumer_tag)
            queue = self._tag_to_queue.pop(consumer_tag, None)
            try:
                self._active_queues.remove(queue)  # type: ignore[arg-type]
            except ValueError:
                pass
            if self.no_ack_consumers is not None:
                self.no_ack_consumers.discard(consumer_tag)
            self._reset_cycle()
            if queue not in self._active_queues:
                self.connection._callbacks.pop(queue, None)  # type: ignore[arg-type]

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> _Message | None:
        try:
            raw = self._get(queue)
        except Empty:
            return None
        message = self.Message(raw, channel=self)
        message._source_queue = queue
        if not no_ack:
            self.qos.append(message, message.delivery_tag)
        return message

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        self.qos.ack(delivery_tag)

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        self.qos.reject(delivery_tag, requeue=requeue)

    def basic_recover(self, requeue: bool = False) -> Any:
        if requeue:
            return self.qos.restore_unacked()
        raise NotImplementedError("virtual channels only support recover(requeue=True)")

    def basic_qos(self, prefetch_size: int = 0, prefetch_count: int = 0,
                  apply_global: bool = False) -> None:
        """Set the prefetch count (``prefetch_size`` is not supported)."""
        self.qos.prefetch_count = prefetch_count

    def flow(self, active: bool = True) -> None:
        raise NotImplementedError("virtual channels do not support flow control")

    def message_to_python(self, raw_message: Any) -> _Message:
        if isinstance(raw_message, self.Message):
            return raw_message
        return self.Message(raw_message, channel=self)

    def drain_events(self, timeout: float | None = None,
                     callback: Callable[..., Any] | None = None) -> Any:
        callback = callback or self.connection._deliver
        if self._consumers and self.qos.can_consume():
            get_many = getattr(self, "_get_many", None)
            if get_many is not None:
                return get_many(self._active_queues, timeout=timeout)
            return self._poll(self.cycle, callback, timeout=timeout)
        raise Empty()

    # -- redelivery ----------------------------------------------------------
    def _restore(self, message: _Message) -> None:
        """Put an unacknowledged message back, flagged as redelivered.

        It goes back to the head of the queue it was consumed from
        (:meth:`_put_at_head`).  (kombu 5.x routes it
        through the exchange again, which copies a fanout message into every
        bound queue; it does that here only for messages of unknown origin.)
        """
        source = getattr(message, "_source_queue", None)
        info = message.delivery_info
        payload = message.serializable()
        payload["redelivered"] = True
        if source:
            self._put_at_head(source, payload)
            return
        for queue in self._lookup(info["exchange"], info["routing_key"]):
            self._put(queue, payload)

    def _restore_at_beginning(self, message: _Message) -> None:
        self._restore(message)

    # -- bodies and priorities -----------------------------------------------
    def encode_body(self, body: Any, encoding: str | None = None) -> tuple[Any, str | None]:
        if encoding and encoding.lower() != "utf-8":
            return self.codecs[encoding].encode(body), encoding
        return body, encoding

    def decode_body(self, body: Any, encoding: str | None = None) -> Any:
        if encoding and encoding.lower() != "utf-8":
            return self.codecs[encoding].decode(body)
        return body

    def _get_message_priority(self, message: dict[str, Any], reverse: bool = False) -> int:
        """The message's priority clamped to ``min..max_priority``."""
        try:
            priority = max(min(int(message["properties"]["priority"]), self.max_priority),
                           self.min_priority)
        except (TypeError, ValueError, KeyError):
            priority = self.default_priority
        return (self.max_priority - priority) if reverse else priority

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        """Cancel consumers, restore unacknowledged messages and release the channel."""
        if not self.closed:
            self.closed = True
            for consumer in list(self._consumers):
                self.basic_cancel(consumer)
            if self._qos is not None:
                self._qos.restore_unacked_once()
            if self._cycle is not None:
                self._cycle.close()
                self._cycle = None
            if self.connection is not None:
                self.connection.close_channel(self)

    def _reset_cycle(self) -> None:
        self._cycle = FairCycle(self._get_and_deliver, self._active_queues, Empty)

    @property
    def cycle(self) -> FairCycle:
        if self._cycle is None:
            self._reset_cycle()
        return self._cycle  # type: ignore[return-value]

    @property
    def state(self) -> BrokerState:
        return self.connection.state

    @property
    def qos(self) -> _QoS:
        if self._qos is None:
            self._qos = self.QoS(self)
        return self._qos

    @property
    def _vhost(self) -> str:
        client = self.connection.client if self.connection is not None else None
        return (client.virtual_host if client is not None else None) or "/"

    def _get_free_channel_id(self) -> int:
        used = self.connection._used_channel_ids
        taken = set(used)
        for channel_id in range(1, self.connection.channel_max + 1):
            if channel_id not in taken:
                used.append(channel_id)
                return channel_id
        raise ResourceError(f"No free channel ids, current={len(self.connection.channels)}, "
                            f"channel_max={self.connection.channel_max}")

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        """Close the channel; one lent by a ChannelPool goes back to it instead
        (closed and replaced when the block raised)."""
        pool = self.__dict__.get("_channel_pool")
        if pool is None or not exit_pooled(self, pool, exc_type is not None):
            self.close()


# Transport's ``Channel`` attribute shadows the class in its body.
_Channel = Channel


class Management(base.Management):
    """Lists the bindings of a virtual broker."""

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        channel = transport.client.channel()  # type: ignore[union-attr]
        assert isinstance(channel, _Channel)
        self.channel = channel

    def get_bindings(self) -> list[dict[str, str]]:
        return [{"destination": q, "source": e, "routing_key": r}
                for q, e, r in self.channel.list_bindings()]

    def close(self) -> None:
        self.channel.close()


class Transport(base.Transport):
    """A virtual transport: channels over a queue store, polled for messages."""

    Channel: type[_Channel] = _Channel
    Cycle = FairCycle
    Management = Management
    #: Seconds to sleep between polls that found nothing.
    polling_interval: float | None = 1.0
    channel_max = 65535
    implements = base.Transport.implements.extend(
        asynchronous=False,
        exchange_type=frozenset(["direct", "topic"]),
        heartbeats=False,
    )

    def __init__(self, client: Any, **kwargs: Any) -> None:
        self.client = client
        self.state = BrokerState()
        self.channels: list[Channel] = []
        self._avail_channels: list[Channel] = []
        self._callbacks: dict[str, Callable[[Any], Any]] = {}
        self.cycle = self.Cycle(self._drain_channel, self.channels, Empty)
        options = client.transport_options if client is not None else {}
        polling_interval = options.get("polling_interval")
        if polling_interval is not None:
            self.polling_interval = polling_interval
        self._used_channel_ids = array("H")
        self._lock = threading.Lock()

    def create_channel(self, connection: Any) -> _Channel:
        try:
            return self._avail_channels.pop()
        except IndexError:
            channel = self.Channel(connection)
            self.channels.append(channel)
            return channel

    def close_channel(self, channel: _Channel) -> None:
        try:
            try:
                self._used_channel_ids.remove(channel.channel_id)
            except ValueError:
                pass
            try:
                self.channels.remove(channel)
            except ValueError:
                pass
        finally:
            channel.connection = None  # type: ignore[assignment]

    def establish_connection(self) -> Transport:
        # A first channel proves the store is reachable; it is handed out by
        # the next create_channel().
        self._avail_channels.append(self.create_channel(self))
        return self

    def close_connection(self, connection: Any) -> None:
        self.cycle.close()
        for channels in (self._avail_channels, self.channels):
            while channels:
                try:
                    channel = channels.pop()
                except IndexError:  # pragma: no cover - raced
                    break
                channel.close()

    # kombu's signature: only ``timeout``, though the base accepts any keyword.
    def drain_events(self, connection: Any,  # type: ignore[override]
                     timeout: float | None = None) -> None:
        """Deliver one message, polling until ``timeout`` (then socket.timeout)."""
        start = monotonic()
        get = self.cycle.get
        interval = self.polling_interval
        while True:
            try:
                get(self._deliver, timeout=timeout)
                return
            except Empty:
                if timeout is not None:
                    remaining = timeout - (monotonic() - start)
                    if remaining <= 0:
                        raise socket.timeout() from None
                    if interval is not None:
                        sleep(min(interval, remaining))
                elif interval is not None:
                    sleep(interval)

    def _deliver(self, message: Any, queue: str) -> None:
        if not queue:
            raise KeyError(f"Received message without destination queue: {message!r}")
        try:
            callback = self._callbacks[queue]
        except KeyError:
            logger.warning("Requeuing undeliverable message for queue %r: no consumers", queue)
            self._reject_inbound_message(message, queue)
        else:
            callback(message)

    def _reject_inbound_message(self, raw_message: Any, queue: str | None = None) -> None:
        for channel in self.channels:
            if channel:
                message = channel.Message(raw_message, channel=channel)
                message._source_queue = queue
                channel.qos.append(message, message.delivery_tag)
                channel.basic_reject(message.delivery_tag, requeue=True)
                break

    def on_message_ready(self, channel: _Channel, message: Any, queue: str) -> None:
        if not queue or queue not in self._callbacks:
            raise KeyError(f"Message for queue {queue!r} without consumers: {message!r}")
        self._callbacks[queue](message)

    def _drain_channel(self, channel: _Channel, callback: Callable[..., Any],
                       timeout: float | None = None) -> Any:
        return channel.drain_events(callback=callback, timeout=timeout)

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {"port": self.default_port, "hostname": "localhost"}
