"""Consumer programs that reconnect by themselves: :class:`ConsumerMixin`."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from itertools import count
from time import sleep
from typing import Any

from .common import ignore_errors
from .connection import Connection
from .log import get_logger
from .messaging import Consumer, Producer
from .messaging import Consumer as _Consumer
from .utils.compat import nested
from .utils.encoding import safe_repr
from .utils.limits import TokenBucket
from .utils.objects import cached_property

__all__ = ("ConsumerMixin", "ConsumerProducerMixin")

logger = get_logger(__name__)

W_CONN_LOST = "Connection to broker lost, trying to re-establish connection..."
W_CONN_ERROR = "Broker connection error, trying again in %s seconds: %r."

#: Longest single sleep of :meth:`ConsumerMixin.run` while restarts are limited.
_MAX_RESTART_SLEEP = 1.0


class ConsumerMixin:
    """Base of a consumer program: connect, consume, reconnect, until :attr:`should_stop`.

    A subclass sets :attr:`connection` (a :class:`~kombu.Connection`, cloned
    for each connection attempt) and implements :meth:`get_consumers`;
    :meth:`run` then consumes until :attr:`should_stop` is set, reconnecting
    after connection and channel errors at most once a second
    (:attr:`restart_limit`).  Hooks: :meth:`on_connection_error`,
    :meth:`on_connection_revived`, :meth:`on_consume_ready`,
    :meth:`on_consume_end`, :meth:`on_iteration`, :meth:`on_decode_error`
    and :meth:`extra_context`.
    """

    #: The connection to clone for every attempt (set by the subclass).
    connection: Connection

    #: Most retries of one connection attempt (``None``: no limit).
    connect_max_retries: int | None = None

    #: Set to true to make :meth:`run` and :meth:`consume` return.
    should_stop: bool = False

    def get_consumers(self, Consumer: Callable[..., _Consumer], channel: Any) -> list[_Consumer]:
        """Return the consumers to start; ``Consumer`` is already bound to ``channel``."""
        raise NotImplementedError(f"{type(self).__name__} must define get_consumers(Consumer, channel)")

    def on_connection_revived(self) -> None:
        """Called when a connection was established (again)."""

    def on_consume_ready(self, connection: Connection, channel: Any, consumers: list[_Consumer],
                         **kwargs: Any) -> None:
        """Called when the consumers are consuming (with :meth:`consume`'s extra kwargs)."""

    def on_consume_end(self, connection: Connection, channel: Any) -> None:
        """Called after the consumers were cancelled."""

    def on_iteration(self) -> None:
        """Called before every wait for events."""

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        """Log a message whose body cannot be decoded and acknowledge it (drops it)."""
        logger.error("Can't decode message body: %r (type:%r encoding:%r raw:%r')",
                     exc, message.content_type, message.content_encoding,
                     safe_repr(message.body))
        message.ack()

    def on_connection_error(self, exc: BaseException, interval: float) -> None:
        """Called when a connection attempt failed and is retried in ``interval`` seconds."""
        logger.warning(W_CONN_ERROR, interval, exc, exc_info=True)

    @contextmanager
    def extra_context(self, connection: Connection, channel: Any) -> Iterator[None]:
        """A context entered once the consumers are ready (nothing by default)."""
        yield

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """Consume until :attr:`should_stop`, reconnecting after connection errors.

        ``kwargs`` go to :meth:`consume`.  A restart takes ``_tokens`` from
        :attr:`restart_limit`; while it has none the loop sleeps.
        """
        restart_limit = self.restart_limit
        errors = tuple(self.connection.connection_errors) + tuple(
            self.connection.channel_errors)
        while not self.should_stop:
            try:
                if restart_limit.can_consume(_tokens):
                    for _ in self.consume(limit=None, **kwargs):
                        pass
                else:
                    sleep(min(restart_limit.expected_time(_tokens), _MAX_RESTART_SLEEP))
            except errors:
                logger.warning(W_CONN_LOST, exc_info=True)

    @contextmanager
    def consumer_context(self, **kwargs: Any) -> Iterator[tuple[Connection, Any,
                                                                list[_Consumer]]]:
        """Connect, start the consumers and :meth:`extra_context`; yield the three."""
        with self.Consumer() as (connection, channel, consumers):
            with self.extra_context(connection, channel):
                self.on_consume_ready(connection, channel, consumers, **kwargs)
                yield connection, channel, consumers

    def consume(self, limit: int | None = None, timeout: float | None = None,
                safety_interval: float = 1, **kwargs: Any) -> Iterator[None]:
        """Connect and drain events; yield after each batch of events.

        Stops after ``limit`` batches or when :attr:`should_stop` is set.
        Waits ``safety_interval`` seconds at a time (checking heartbeats
        in between) and raises :exc:`socket.timeout` when no event came for
        ``timeout`` seconds.
        """
        elapsed = 0.0
        with self.consumer_context(**kwargs) as (conn, channel, consumers):
            for _ in range(limit) if limit else count():
                if self.should_stop:
                    break
                self.on_iteration()
                try:
                    conn.drain_events(timeout=safety_interval)
                except socket.timeout:
                    conn.heartbeat_check()
                    elapsed += safety_interval
                    if timeout and elapsed >= timeout:
                        raise
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    yield
                    elapsed = 0.0
        logger.debug("consume exiting")

    def maybe_conn_error(self, fun: Callable[..., Any]) -> Any:
        """Call ``fun`` ignoring connection errors (prefer :func:`kombu.common.ignore_errors`)."""
        return ignore_errors(self, fun)

    def create_connection(self) -> Connection:
        """A new connection for one attempt: a clone of :attr:`connection`."""
        return self.connection.clone()

    @contextmanager
    def establish_connection(self) -> Iterator[Connection]:
        """Connect (retrying up to :attr:`connect_max_retries`); close it afterwards."""
        with self.create_connection() as conn:
            conn.ensure_connection(self.on_connection_error, self.connect_max_retries)
            yield conn

    @contextmanager
    def Consumer(self) -> Iterator[tuple[Connection, Any, list[_Consumer]]]:
        """Connect and start :meth:`get_consumers`; yield ``(connection, channel, consumers)``."""
        with self.establish_connection() as conn:
            self.on_connection_revived()
            logger.info("Connected to %s", conn.as_uri())
            channel = conn.default_channel
            cls = partial(Consumer, channel, on_decode_error=self.on_decode_error)
            try:
                with self._consume_from(*self.get_consumers(cls, channel)) as consumers:
                    yield conn, channel, consumers
                logger.debug("Consumers canceled")
            finally:
                self.on_consume_end(conn, channel)
        logger.debug("Connection closed")

    def _consume_from(self, *consumers: _Consumer) -> AbstractContextManager[list[Any]]:
        return nested(*consumers)

    @cached_property
    def restart_limit(self) -> TokenBucket:
        """Restarts allowed: one per second."""
        return TokenBucket(1)

    @cached_property
    def connection_errors(self) -> tuple[type[BaseException], ...]:
        """The connection's connection errors."""
        return tuple(self.connection.connection_errors)

    @cached_property
    def channel_errors(self) -> tuple[type[BaseException], ...]:
        """The connection's channel errors."""
        return tuple(self.connection.channel_errors)


class ConsumerProducerMixin(ConsumerMixin):
    """A :class:`ConsumerMixin` that also publishes, on a connection of its own.

    :attr:`producer` publishes on :attr:`producer_connection`, opened on
    first use and closed when consuming ends, so publishing never blocks on
    the consuming connection.
    """

    _producer_connection: Connection | None = None

    def on_consume_end(self, connection: Connection, channel: Any) -> None:
        if self._producer_connection is not None:
            self._producer_connection.close()
            self._producer_connection = None

    @property
    def producer(self) -> Producer:
        """A producer on :attr:`producer_connection`."""
        return Producer(self.producer_connection)

    @property
    def producer_connection(self) -> Connection:
        """The publishing connection (a clone of :attr:`connection`), connected."""
        if self._producer_connection is None:
            conn = self.connection.clone()
            conn.ensure_connection(self.on_connection_error, self.connect_max_retries)
            self._producer_connection = conn
        return self._producer_connection
