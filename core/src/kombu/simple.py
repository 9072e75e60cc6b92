"""A queue.Queue-like interface to a broker queue: SimpleQueue and SimpleBuffer."""

from __future__ import annotations

import socket
from collections import deque
from queue import Empty
from time import monotonic
from typing import TYPE_CHECKING, Any

from kombu import entity, messaging
from kombu.connection import maybe_channel

if TYPE_CHECKING:  # pragma: no cover
    from types import TracebackType

__all__ = ("SimpleBuffer", "SimpleQueue")


class SimpleBase:
    """The queue interface over a producer and a consumer of one queue."""

    #: Raised by :meth:`get` when no message arrives in time (:exc:`queue.Empty`).
    Empty = Empty
    _consuming = False

    def __init__(self, channel: Any, producer: messaging.Producer,
                 consumer: messaging.Consumer, no_ack: bool = False) -> None:
        self.channel = maybe_channel(channel)
        self.producer = producer
        self.consumer = consumer
        self.no_ack = no_ack
        self.queue = self.consumer.queues[0]
        self.buffer: deque[Any] = deque()
        self.consumer.register_callback(self._receive)

    def __enter__(self) -> SimpleBase:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        self.close()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the next message, waiting up to ``timeout`` seconds.

        ``timeout=None`` waits until a message arrives; ``block=False`` is
        :meth:`get_nowait`.  The message must be acknowledged
        (``message.ack()``) unless ``no_ack`` is set.

        :raises SimpleQueue.Empty: no message arrived in time.
        """
        if not block:
            return self.get_nowait()
        buffer = self.buffer
        if buffer:
            return buffer.popleft()
        if not self._consuming:
            # Until something must be waited for, fetching directly is the
            # cheapest way; once consuming, deliveries come in order
            # through drain_events only.
            message = self._fetch()
            if message is not None:
                return message
            self._consume()
        deadline = None if timeout is None else monotonic() + timeout
        drain_events = self.channel.connection.client.drain_events
        while True:
            if deadline is None:
                remaining = None
            else:
                remaining = deadline - monotonic()
                if remaining < 0:
                    remaining = 0
            try:
                drain_events(timeout=remaining)
            except socket.timeout:
                raise self.Empty() from None
            if buffer:
                return buffer.popleft()
            if remaining is not None and deadline - monotonic() <= 0:  # type: ignore[operator]
                raise self.Empty()

    def get_nowait(self) -> Any:
        """Remove and return the next message if one is ready.

        :raises SimpleQueue.Empty: the queue is empty.

        (kombu 5.x skips messages already delivered to the consumer.)
        """
        buffer = self.buffer
        if not buffer and self._consuming:
            try:
                self.channel.connection.client.drain_events(timeout=0)
            except socket.timeout:
                pass
        if buffer:
            return buffer.popleft()
        message = self._fetch()
        if message is None:
            raise self.Empty()
        return message

    def _fetch(self) -> Any:
        """Fetch one ready message from the queue with basic_get, or None."""
        channel = self.channel
        message = channel.basic_get(queue=self.queue.name, no_ack=self.no_ack)
        if message is not None:
            m2p = getattr(channel, "message_to_python", None)
            if m2p is not None:
                message = m2p(message)
            if self.no_ack:
                message._no_ack = True
            if message.errors:
                message._reraise_error()
            message.accept = self.consumer.accept
        return message

    def put(self, message: Any, serializer: str | None = None,
            headers: dict[str, Any] | None = None, compression: str | None = None,
            routing_key: str | None = None, **kwargs: Any) -> None:
        """Publish ``message`` to the queue (``kwargs`` as for :meth:`Producer.publish`)."""
        self.producer.publish(message, serializer=serializer, routing_key=routing_key,
                              headers=headers, compression=compression, **kwargs)

    def clear(self) -> int:
        """Remove every ready message from the queue; return how many."""
        return self.consumer.purge()

    def qsize(self) -> int:
        """How many messages :meth:`get` can return without waiting.

        (kombu 5.x does not count messages already delivered to the consumer.)
        """
        _, size, _ = self.queue.queue_declare(passive=True)
        return size + len(self.buffer)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop consuming."""
        self.consumer.cancel()
        self._consuming = False

    def _receive(self, message_data: Any, message: Any) -> None:
        self.buffer.append(message)

    def _consume(self) -> None:
        if not self._consuming:
            self.consumer.consume(no_ack=self.no_ack)
            self._consuming = True

    def __len__(self) -> int:
        """``len(queue)`` is :meth:`qsize`."""
        return self.qsize()

    def __bool__(self) -> bool:
        return True


class SimpleQueue(SimpleBase):
    """A persistent queue with a :class:`queue.Queue`-like interface.

    :param channel: a channel or :class:`~kombu.Connection`.
    :param name: the queue name (the exchange and routing key are named
        alike), or a :class:`~kombu.Queue`.
    :param no_ack: messages need no acknowledgement (default ``False``).
    :param queue_opts: :class:`~kombu.Queue` keyword arguments.
    :param queue_args: the queue's declaration arguments.
    :param exchange_opts: :class:`~kombu.Exchange` keyword arguments.
    :param serializer: the serializer of :meth:`put`.
    :param compression: the compression of :meth:`put`.
    :param accept: content types or serializer names :meth:`get` accepts.
    """

    no_ack = False
    queue_opts: dict[str, Any] = {}
    queue_args: dict[str, Any] = {}
    exchange_opts: dict[str, Any] = {"type": "direct"}

    def __init__(self, channel: Any, name: str | entity.Queue, no_ack: bool | None = None,
                 queue_opts: dict[str, Any] | None = None,
                 queue_args: dict[str, Any] | None = None,
                 exchange_opts: dict[str, Any] | None = None, serializer: str | None = None,
                 compression: str | None = None, accept: Any = None,
                 **kwargs: Any) -> None:
        if no_ack is None:
            no_ack = self.no_ack
        if isinstance(name, entity.Queue):
            queue = name
            exchange = queue.exchange
            routing_key = queue.routing_key
        else:
            exchange = entity.Exchange(name, **{**self.exchange_opts, **(exchange_opts or {})})
            queue = entity.Queue(name, exchange, name,
                                 queue_arguments={**self.queue_args, **(queue_args or {})},
                                 **{**self.queue_opts, **(queue_opts or {})})
            routing_key = name
        consumer = messaging.Consumer(channel, queue, accept=accept)
        producer = messaging.Producer(channel, exchange, serializer=serializer,
                                      routing_key=routing_key, compression=compression)
        super().__init__(channel, producer, consumer, no_ack)


class SimpleBuffer(SimpleQueue):
    """An ephemeral queue: not durable, deleted when unused, no acknowledgements."""

    no_ack = True
    queue_opts = {"durable": False, "auto_delete": True, "exclusive": True}
    exchange_opts = {"durable": False, "delivery_mode": "transient", "auto_delete": True}
