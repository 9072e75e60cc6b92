"""Sending and receiving messages: :class:`Producer` and :class:`Consumer`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import count
from typing import TYPE_CHECKING, Any, Callable

from kombu.common import ALREADY_DECLARED, _declare_once, _maybe_declare, maybe_declare
from kombu.compression import compress
from kombu.connection import PooledConnection, is_connection, maybe_channel  # noqa: F401
from kombu.entity import Exchange, Queue, maybe_delivery_mode
from kombu.exceptions import ContentDisallowed, NotBoundError
from kombu.message import Message
from kombu.serialization import dumps, prepare_accept_content
from kombu.utils.functional import ChannelPromise, maybe_list

if TYPE_CHECKING:  # pragma: no cover
    from types import TracebackType

    from kombu.connection import Connection

__all__ = ("Consumer", "Exchange", "Producer", "Queue")


class Producer:
    """Publishes messages.

    :param channel: a channel, or a :class:`~kombu.Connection` whose default
        channel is used (opened on the first publish).
    :param exchange: the default :class:`~kombu.Exchange` (or exchange name);
        the default exchange ``''`` if not given.
    :param routing_key: the default routing key.
    :param serializer: the default serializer (``None``: json, bytes and
        text sent as they are).
    :param auto_declare: declare the default exchange (once per connection)
        before publishing to it (default ``True``).
    :param compression: the default compression method.
    :param on_return: ``callback(exception, exchange, routing_key, message)``
        for messages the broker returns (``mandatory``); AMQP brokers only.
    """

    #: The default exchange.
    exchange: Exchange
    #: The default routing key.
    routing_key = ""
    #: The default serializer.
    serializer: str | None = None
    #: The default compression method.
    compression: str | None = None
    #: Declare the default exchange before publishing to it.
    auto_declare = True
    #: Called with returned (undeliverable) messages.
    on_return: Callable[..., Any] | None = None
    #: The connection, when one was given instead of a channel.
    __connection__: Connection | None = None
    #: ``(exchange, cache, entry)`` once :attr:`exchange` was declared: the
    #: connection's declaration cache and the entry added to it.
    _declared: tuple[Exchange, set[Any], Any] | None = None

    def __init__(self, channel: Any, exchange: Exchange | str | None = None,
                 routing_key: str | None = None, serializer: str | None = None,
                 auto_declare: bool | None = None, compression: str | None = None,
                 on_return: Callable[..., Any] | None = None) -> None:
        self._channel = channel
        if exchange is None:
            exchange = Exchange("")
        elif isinstance(exchange, str):
            exchange = Exchange(exchange)
        self.exchange = exchange
        self.routing_key = routing_key or self.routing_key
        self.serializer = serializer or self.serializer
        self.compression = compression or self.compression
        self.on_return = on_return or self.on_return
        if auto_declare is not None:
            self.auto_declare = auto_declare
        if self._channel:
            self.revive(self._channel)

    def __repr__(self) -> str:
        return f"<Producer: {self._channel}>"

    def __reduce__(self) -> Any:
        return self.__class__, self.__reduce_args__()

    def __reduce_args__(self) -> tuple[Any, ...]:
        return (None, self.exchange, self.routing_key, self.serializer, self.auto_declare,
                self.compression)

    def declare(self) -> None:
        """Declare the default exchange (done before publishing when auto_declare is set)."""
        if self.exchange.name:
            self.exchange.declare()

    def maybe_declare(self, entity: Any, retry: bool = False, **retry_policy: Any) -> Any:
        """Declare ``entity`` unless already declared on this connection."""
        if entity:
            return maybe_declare(entity, self.channel, retry, **retry_policy)
        return None

    def publish(self, body: Any, routing_key: str | None = None, delivery_mode: Any = None,
                mandatory: bool = False, immediate: bool = False, priority: int = 0,
                content_type: str | None = None, content_encoding: str | None = None,
                serializer: str | None = None, headers: dict[str, Any] | None = None,
                compression: str | None = None, exchange: Exchange | str | None = None,
                retry: bool = False, retry_policy: dict[str, Any] | None = None,
                declare: Sequence[Any] | None = None, expiration: float | None = None,
                timeout: float | None = None, confirm_timeout: float | None = None,
                **properties: Any) -> Any:
        """Publish a message.

        :param body: the body: serialized with ``serializer`` unless
            ``content_type`` is given (then text is encoded with
            ``content_encoding``, default utf-8, and bytes sent as they are).
        :param routing_key: default :attr:`routing_key`.
        :param delivery_mode: 1/'transient' or 2/'persistent' (default: the
            exchange's, else persistent).
        :param mandatory: ask the broker to return unroutable messages (AMQP).
        :param immediate: not supported by modern brokers.
        :param priority: 0 (lowest) up to the queue's max priority.
        :param headers: application headers (not modified).
        :param compression: compression method (default :attr:`compression`).
        :param exchange: the exchange (an Exchange or a name) instead of
            :attr:`exchange`; it must exist.
        :param retry: reconnect and retry on connection errors, following
            ``retry_policy`` (keywords of :meth:`Connection.ensure
            <kombu.Connection.ensure>`).
        :param declare: entities to declare (once per connection) first.
        :param expiration: message time to live in seconds.
        :param timeout: seconds to wait for the publish (transport dependent).
        :param confirm_timeout: seconds to wait for a publisher confirm.
        :param properties: further message properties (``correlation_id``,
            ``reply_to`` (a name or :class:`~kombu.Queue`), ``type``, ...).

        kombu 5.x appends to a ``declare`` list and adds ``compression`` to
        a ``headers`` dict passed in, and copies ``retry_policy`` into the
        connection's transport options; none of that happens here.
        """
        if exchange is None:
            ex = self.exchange
            exchange_name = ex.name
        elif isinstance(exchange, Exchange):
            ex = exchange
            exchange_name = exchange.name
        else:
            ex = self.exchange
            exchange_name = exchange
        properties["delivery_mode"] = maybe_delivery_mode(delivery_mode or ex.delivery_mode)
        if expiration is not None:
            properties["expiration"] = str(int(expiration * 1000))
        if routing_key is None:
            routing_key = self.routing_key

        if not content_type:
            content_type, content_encoding, body = dumps(body, serializer or self.serializer)
        elif isinstance(body, str):
            if not content_encoding:
                content_encoding = "utf-8"
            body = body.encode(content_encoding)
        elif not content_encoding:
            content_encoding = "binary"
        if compression is None:
            compression = self.compression
        if compression:
            body, compression_type = compress(body, compression)
            headers = {**headers, "compression": compression_type} if headers else {
                "compression": compression_type}
        elif headers is None:
            headers = {}  # as kombu 5.x: an empty table on the wire, not none

        if retry:
            connection = self.connection
            if connection is None:
                raise ValueError("publish(retry=True) needs a connection: the producer's "
                                 "channel is not attached to one")
            publish = connection.ensure(self, self._publish, **(retry_policy or {}))
            return publish(body, priority, content_type, content_encoding, headers,
                           properties, routing_key, mandatory, immediate, exchange_name,
                           declare, timeout, confirm_timeout)
        return self._publish(body, priority, content_type, content_encoding, headers,
                             properties, routing_key, mandatory, immediate, exchange_name,
                             declare, timeout, confirm_timeout)

    def _publish(self, body: Any, priority: int, content_type: str | None,
                 content_encoding: str | None, headers: dict[str, Any] | None,
                 properties: dict[str, Any], routing_key: str, mandatory: bool,
                 immediate: bool, exchange: str, declare: Iterable[Any] | None,
                 timeout: float | None = None, confirm_timeout: float | None = None) -> Any:
        channel = self._channel
        if channel.__class__ is ChannelPromise:
            channel = self.channel
        elif channel is None:
            raise NotBoundError("The producer has no channel: create it with a channel or "
                                "connection, or call producer.revive(channel)")
        if declare:
            for entity in declare:
                if entity:
                    _maybe_declare(entity, channel)
        if self.auto_declare and self.exchange.name:
            memo = self._declared
            if (memo is None or memo[0] is not self.exchange or memo[2] not in memo[1]
                    or memo[1] is not channel.connection.client.declared_entities):
                self._declare_exchange(channel)
        reply_to = properties.get("reply_to")
        if reply_to is not None and isinstance(reply_to, Queue):
            properties["reply_to"] = reply_to.name
        message = channel.prepare_message(body, priority, content_type, content_encoding,
                                          headers, properties)
        if timeout is None and confirm_timeout is None:
            return channel.basic_publish(message, exchange=exchange, routing_key=routing_key,
                                         mandatory=mandatory, immediate=immediate)
        kwargs = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if confirm_timeout is not None:
            kwargs["confirm_timeout"] = confirm_timeout
        return channel.basic_publish(message, exchange=exchange, routing_key=routing_key,
                                     mandatory=mandatory, immediate=immediate, **kwargs)

    def _declare_exchange(self, channel: Any) -> None:
        """Declare :attr:`exchange` unless cached; remember the cache entry if one was made.

        The entry lets the next publish check the cache by identity.  (The
        exchange is compared by identity too: assign a new exchange rather
        than changing this one in place.)
        """
        exchange = self.exchange
        entry = _declare_once(exchange, channel)
        if entry is not None and entry is not ALREADY_DECLARED:
            self._declared = (exchange, channel.connection.client.declared_entities, entry)

    def _get_channel(self) -> Any:
        channel = self._channel
        if isinstance(channel, ChannelPromise):
            channel = self._channel = channel()
            self.exchange.revive(channel)
            self._add_on_return(channel)
        return channel

    def _set_channel(self, channel: Any) -> None:
        self._channel = channel

    #: The channel (resolved from the connection on first use).
    channel = property(_get_channel, _set_channel)

    def _add_on_return(self, channel: Any) -> None:
        # Only brokers that return messages (AMQP) have a basic_return event.
        if self.on_return:
            events = getattr(channel, "events", None)
            if events is not None:
                events.setdefault("basic_return", set()).add(self.on_return)

    def revive(self, channel: Any) -> None:
        """Use ``channel`` (a channel or connection), e.g. after a reconnect."""
        if is_connection(channel):
            connection = channel
            self.__connection__ = connection
            channel = ChannelPromise(lambda: connection.default_channel)
        self._channel = channel
        if not isinstance(channel, ChannelPromise):
            self._add_on_return(channel)
        self.exchange = self.exchange(channel)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        connection = self.__connection__
        if connection is not None and exc_type is not None:
            pool = getattr(connection, "_pool", None)
            if pool is not None:
                # A pooled connection that failed is replaced, not reused.
                pool.replace(connection)
        self.release()

    def release(self) -> None:
        """Release resources (nothing for a plain producer; pools override it)."""

    close = release

    @property
    def connection(self) -> Connection | None:
        """The :class:`~kombu.Connection` of the producer, if any."""
        try:
            return self.__connection__ or self.channel.connection.client
        except AttributeError:
            return None


class Consumer:
    """Consumes messages from one or more queues.

    :param channel: a channel, or a :class:`~kombu.Connection` whose default
        channel is used.
    :param queues: a :class:`~kombu.Queue` or a list of them.
    :param no_ack: let the broker forget messages once delivered (no ack).
    :param auto_declare: declare the queues (and exchanges, bindings) now
        and after reconnects (default ``True``).
    :param callbacks: ``callback(body, message)`` functions called in order
        with each decoded message.
    :param on_decode_error: ``callback(message, exc)`` for messages that
        cannot be decoded (refused content type, corrupt body); without it
        the error propagates from ``drain_events``.
    :param on_message: ``callback(message)`` called instead of decoding and
        :attr:`callbacks`.
    :param accept: content types or serializer names to accept (``None``:
        every serializer enabled for untrusted content, so never pickle).
    :param prefetch_count: initial prefetch limit (see :meth:`qos`).
    :param tag_prefix: prefix of the generated consumer tags.
    """

    ContentDisallowed = ContentDisallowed

    channel: Any = None
    no_ack: bool | None = None
    auto_declare = True
    callbacks: list[Callable[[Any, Any], Any]]
    on_message: Callable[[Any], Any] | None = None
    on_decode_error: Callable[[Any, BaseException], Any] | None = None
    accept: set[str] | None = None
    prefetch_count: int | None = None
    tag_prefix: str | None = None

    _tags = count(1)  # consumer tags are unique in the process

    def __init__(self, channel: Any, queues: Queue | Sequence[Queue] | None = None,
                 no_ack: bool | None = None, auto_declare: bool | None = None,
                 callbacks: list[Callable[[Any, Any], Any]] | None = None,
                 on_decode_error: Callable[[Any, BaseException], Any] | None = None,
                 on_message: Callable[[Any], Any] | None = None,
                 accept: Iterable[str] | None = None, prefetch_count: int | None = None,
                 tag_prefix: str | None = None) -> None:
        self.channel = channel
        self.queues = maybe_list(queues or [])
        self.no_ack = self.no_ack if no_ack is None else no_ack
        self.callbacks = [] if callbacks is None else callbacks
        self.on_message = on_message
        self.tag_prefix = tag_prefix
        self._active_tags: dict[str, str] = {}
        self._no_ack_tags: set[str] = set()
        if auto_declare is not None:
            self.auto_declare = auto_declare
        if on_decode_error is not None:
            self.on_decode_error = on_decode_error
        self.accept = prepare_accept_content(accept)
        self.prefetch_count = prefetch_count
        if self.channel:
            self.revive(self.channel)

    @property
    def queues(self) -> list[Queue]:
        """The queues consumed from."""
        return list(self._queues.values())

    @queues.setter
    def queues(self, queues: Iterable[Queue]) -> None:
        self._queues = {q.name: q for q in queues}

    def revive(self, channel: Any) -> None:
        """Use ``channel`` (e.g. after a reconnect): rebind, redeclare, reapply QoS.

        Consuming stops; call :meth:`consume` again.
        """
        self._active_tags.clear()
        channel = self.channel = maybe_channel(channel)
        queues = list(self._queues.values())
        self._queues = {}
        for queue in queues:
            queue = queue(channel)
            queue.revive(channel)
            if self.auto_declare:
                queue.declare()
            # The name is known once declared (anonymous queues).
            self._queues[queue.name] = queue
        if self.prefetch_count is not None:
            self.qos(prefetch_count=self.prefetch_count)

    def declare(self) -> None:
        """Declare the queues, exchanges and bindings (done at creation if auto_declare)."""
        for queue in self._queues.values():
            queue.declare()

    def register_callback(self, callback: Callable[[Any, Any], Any]) -> None:
        """Add ``callback(body, message)`` to :attr:`callbacks`."""
        self.callbacks.append(callback)

    def __enter__(self) -> Consumer:
        self.consume()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        channel = self.channel
        if channel and channel.connection:
            conn_errors = channel.connection.client.connection_errors
            if not isinstance(exc_val, conn_errors):
                try:
                    self.cancel()
                except Exception:  # noqa: BLE001 - never mask the body's exception
                    pass

    def add_queue(self, queue: Queue) -> Queue:
        """Add ``queue`` (declared if auto_declare); :meth:`consume` starts consuming it."""
        queue = queue(self.channel)
        if self.auto_declare:
            queue.declare()
        self._queues[queue.name] = queue
        return queue

    def consume(self, no_ack: bool | None = None) -> None:
        """Start consuming from every queue not consumed from yet."""
        queues = [q for q in self._queues.values() if q.name not in self._active_tags]
        if queues:
            no_ack = self.no_ack if no_ack is None else no_ack
            last = len(queues) - 1
            for i, queue in enumerate(queues):
                self._basic_consume(queue, no_ack=no_ack, nowait=i != last)

    def cancel(self) -> None:
        """Stop consuming from all queues (messages already delivered stay delivered)."""
        cancel = self.channel.basic_cancel
        tags = self._active_tags
        for qname, tag in list(tags.items()):
            cancel(tag)
            del tags[qname]

    close = cancel

    def cancel_by_queue(self, queue: Queue | str) -> None:
        """Stop consuming from ``queue`` (a Queue or a name) and forget it."""
        qname = queue.name if isinstance(queue, Queue) else queue
        try:
            tag = self._active_tags.pop(qname)
        except KeyError:
            pass
        else:
            self.channel.basic_cancel(tag)
        finally:
            self._queues.pop(qname, None)

    def consuming_from(self, queue: Queue | str) -> bool:
        """Whether the consumer is consuming from ``queue`` (a Queue or a name)."""
        name = queue.name if isinstance(queue, Queue) else queue
        return name in self._active_tags

    def purge(self) -> int:
        """Remove every ready message of every queue; return how many.

        This cannot be undone.
        """
        return sum(queue.purge() for queue in self._queues.values())

    def flow(self, active: bool) -> Any:
        """Ask the broker to pause (False) or resume (True) deliveries."""
        return self.channel.flow(active)

    def qos(self, prefetch_size: int = 0, prefetch_count: int = 0,
            apply_global: bool = False) -> Any:
        """Limit unacknowledged deliveries to ``prefetch_count`` messages (0: no limit).

        ``prefetch_size`` limits them in bytes where the broker supports it;
        ``apply_global`` applies the limit to the whole connection (AMQP).
        """
        return self.channel.basic_qos(prefetch_size, prefetch_count, apply_global)

    def recover(self, requeue: bool = False) -> Any:
        """Ask the broker to redeliver every unacknowledged message of the channel."""
        return self.channel.basic_recover(requeue=requeue)

    def receive(self, body: Any, message: Any) -> None:
        """Call every callback with ``(body, message)``.

        :raises NotImplementedError: there are no callbacks.
        """
        callbacks = self.callbacks
        if not callbacks:
            raise NotImplementedError(
                "Consumer does not have any callbacks: pass callbacks=[...], call "
                "register_callback() or pass on_message=")
        for callback in callbacks:
            callback(body, message)

    def _basic_consume(self, queue: Queue, consumer_tag: str | None = None,
                       no_ack: bool | None = None, nowait: bool = True) -> str:
        tag = self._active_tags.get(queue.name)
        if tag is None:
            tag = self._add_tag(queue, consumer_tag)
            if no_ack:
                self._no_ack_tags.add(tag)
            queue.consume(tag, self._receive_callback, no_ack=no_ack, nowait=nowait)
        return tag

    def _add_tag(self, queue: Queue, consumer_tag: str | None = None) -> str:
        tag = consumer_tag or f"{self.tag_prefix or ''}{next(self._tags)}"
        self._active_tags[queue.name] = tag
        return tag

    def _receive_callback(self, message: Any) -> Any:
        """Called by the channel with each delivered message."""
        on_m = self.on_message
        try:
            if not isinstance(message, Message):
                m2p = getattr(self.channel, "message_to_python", None)
                if m2p is not None:
                    message = m2p(message)
            if self._no_ack_tags and message.delivery_info.get(
                    "consumer_tag") in self._no_ack_tags:
                message._no_ack = True
            accept = self.accept
            if accept is not None:
                message.accept = accept
            if message.errors:
                return message._reraise_error(self.on_decode_error)
            decoded = None if on_m else message.decode()
        except Exception as exc:
            if not self.on_decode_error:
                raise
            self.on_decode_error(message, exc)
            return None
        return on_m(message) if on_m else self.receive(decoded, message)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.queues}>"

    @property
    def connection(self) -> Connection | None:
        """The :class:`~kombu.Connection` of the consumer's channel, if any."""
        try:
            return self.channel.connection.client  # type: ignore[no-any-return]
        except AttributeError:
            return None
