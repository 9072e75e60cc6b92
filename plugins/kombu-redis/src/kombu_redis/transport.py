"""The Redis transports: ``redis://``, ``rediss://``, ``redis+socket://``
and ``sentinel://``.

The transport delivers from its consuming channels (:mod:`kombu_redis.channel`),
blocks on their waiters between fetches, and runs the refresher
(:mod:`kombu_redis.refresh`) that keeps the messages they hold from being
restored.  The package README lists the delivery guarantees, the options and
the differences from kombu 5.x.
"""

from __future__ import annotations

import selectors
import socket
import weakref
from collections.abc import Iterable
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis
from kombu.exceptions import InconsistencyError
from kombu.transport import virtual
from redis import exceptions as rexc

from kombu_redis.channel import Channel
from kombu_redis.connparams import InvalidDatabase, TLSVerificationError, connparams
from kombu_redis.envelope import Message, UndecodableBody
from kombu_redis.eventloop import HubDriver
from kombu_redis.fetch import FALLBACK_POLL_INTERVAL
from kombu_redis.qos import QoS
from kombu_redis.refresh import Holder, Refresher

__all__ = ("Channel", "InvalidDatabase", "Message", "QoS", "RedisChannel", "SentinelChannel",
           "SentinelTransport", "TLSVerificationError", "Transport", "UndecodableBody")

DEFAULT_PORT = 6379
#: The longest single wait; bounds how late housekeeping can run.
MAX_WAIT = 1.0

RedisChannel = Channel


def _holders_of(transport: Transport) -> Any:
    """The refresher's view of ``transport``'s channels (None once it is gone)."""
    ref = weakref.ref(transport)

    def holders() -> Iterable[Holder] | None:
        alive = ref()
        return None if alive is None else list(alive.channels)  # type: ignore[arg-type]

    return holders


class Transport(virtual.Transport):
    """Redis transport (``redis://``, ``rediss://``, ``redis+socket://``)."""

    Channel = Channel
    polling_interval = None
    default_port = DEFAULT_PORT
    driver_type = "redis"
    driver_name = "redis"
    implements = virtual.Transport.implements.extend(
        asynchronous=True,
        exchange_type=frozenset(["direct", "topic", "fanout"]),
    )
    connection_errors = virtual.Transport.connection_errors + (
        InconsistencyError, OSError, rexc.ConnectionError, rexc.BusyLoadingError,
        rexc.AuthenticationError, rexc.TimeoutError)
    channel_errors = virtual.Transport.channel_errors + (
        rexc.DataError, rexc.InvalidResponse, rexc.ResponseError)
    #: Errors a reconnect can repair (AccessRefused and TLS failures are not).
    recoverable_connection_errors = (rexc.ConnectionError, rexc.TimeoutError,
                                     rexc.BusyLoadingError, OSError)
    recoverable_channel_errors = ()

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        #: The connection pool the channels share (made by the first channel).
        self.pool: Any = None
        #: The channels with consumers, in the order they are served.
        self.consuming: list[RedisChannel] = []
        #: Queues declared through this connection (they exist even when empty).
        self.declared: set[str] = set()
        #: Refreshes the visibility of the messages this transport holds.
        self.refresher = Refresher(_holders_of(self))
        #: Drives the consuming channels from an event loop, once registered.
        self.hub: HubDriver | None = None

    def driver_version(self) -> str:
        return str(redis.__version__)

    def drain_events(self, connection: Any,  # type: ignore[override]
                     timeout: float | None = None) -> None:
        """Deliver one message; block up to ``timeout`` (then socket.timeout)."""
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            channels = self.consuming
            for channel in channels:
                if channel.fetcher.buffer and channel.deliver_one():
                    return
            fetched = False
            for channel in list(channels):
                if channel.fetch():
                    if channel.deliver_one():
                        return
                    fetched = True  # only unusable messages: look again at once
            if fetched and (deadline is None or monotonic() < deadline):
                continue
            wait = MAX_WAIT if deadline is None else min(deadline - monotonic(), MAX_WAIT)
            if wait <= 0:
                raise socket.timeout("timed out waiting for a Redis message")
            self._wait(channels, wait)

    def _wait(self, channels: list[RedisChannel], timeout: float) -> None:
        """Block until a waiter of any channel is readable or ``timeout`` passes."""
        now = monotonic()
        waiters = []
        poll = False
        for channel in channels:
            channel.before_wait()
            timeout = min(timeout, channel.wait_limit(now))
            if channel.fetch_window() <= 0:
                poll = True
            elif channel.fetcher.queues and not channel.fetcher.tracking:
                poll = True
            for waiter in channel.waiters():
                if waiter.connected:
                    if waiter.pending():
                        waiter.read()
                        return
                    waiters.append(waiter)
        if poll:
            timeout = min(timeout, FALLBACK_POLL_INTERVAL)
        if not waiters:
            sleep(timeout)
            return
        if len(waiters) == 1:
            if waiters[0].wait(timeout):
                waiters[0].read()
            return
        with selectors.DefaultSelector() as selector:
            for waiter in waiters:
                selector.register(waiter.sock, selectors.EVENT_READ, waiter)
            try:
                ready = selector.select(timeout)
            except (OSError, ValueError):  # a socket closed meanwhile: look again
                return
            for key, _ in ready:
                key.data.read()

    # -- event loop ------------------------------------------------------------
    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """Consume under ``loop`` (a :class:`kombu.asynchronous.Hub`); see
        :mod:`kombu_redis.eventloop`.  Registering again (after ``loop.reset()``,
        or with another loop) replaces the previous registration."""
        old, self.hub = self.hub, None
        if old is not None:
            old.detach()
        driver = HubDriver(self, loop)
        driver.attach()
        self.hub = driver

    def unregister_from_event_loop(self, connection: Any, loop: Any) -> None:
        """Stop consuming under ``loop`` (``drain_events`` still works)."""
        driver = self.hub
        if driver is not None and driver.loop is loop:
            self.hub = None
            driver.detach()

    def on_readable(self, fileno: int) -> None:  # type: ignore[override]
        """The loop saw the waiter socket ``fileno`` readable: read, fetch, deliver."""
        driver = self.hub
        if driver is not None:
            driver.on_readable(fileno)

    def close_connection(self, connection: Any) -> None:
        driver, self.hub = self.hub, None
        try:
            super().close_connection(connection)
        finally:
            if driver is not None:
                driver.detach()
            self.refresher.stop()
            pool, self.pool = self.pool, None
            if pool is not None:
                pool.disconnect()

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {"port": self.default_port, "hostname": "localhost"}


class SentinelChannel(Channel):
    """A channel whose Redis master is found through Sentinel.

    The URL lists the sentinels (``sentinel://h1:26379;sentinel://h2:26379``);
    the ``master_name`` transport option names the monitored master.
    """

    master_name: str | None = None
    min_other_sentinels = 0
    sentinel_kwargs: dict[str, Any] | None = None
    from_transport_options = Channel.from_transport_options + (
        "master_name", "min_other_sentinels", "sentinel_kwargs")

    def _get_pool(self) -> Any:
        from redis import sentinel

        if not self.master_name:
            raise ValueError("The sentinel transport needs the 'master_name' transport option "
                             "(the name of the master the sentinels monitor).")
        params = connparams(self)
        tls = params.get("connection_class") is self.connection_class_ssl
        for name in ("host", "port", "max_connections", "connection_class"):
            params.pop(name, None)
        client = self.connection.client
        assert client is not None
        sentinels = []
        for url in [*client.alt] or [f"sentinel://{client.hostname}:{client.port or ''}"]:
            parts = urlsplit(url)
            if parts.hostname:
                sentinels.append((parts.hostname, parts.port or self.connection.default_port))
        if not sentinels:
            sentinels.append((client.hostname or "127.0.0.1",
                              client.port or self.connection.default_port))
        manager = sentinel.Sentinel(
            sentinels, min_other_sentinels=self.min_other_sentinels,
            sentinel_kwargs=self.sentinel_kwargs, **params)
        master = manager.master_for(self.master_name, redis.Redis, ssl=tls)
        pool = master.connection_pool
        pool.max_connections = self.max_connections
        return pool


class SentinelTransport(Transport):
    """Redis Sentinel transport (``sentinel://``)."""

    Channel = SentinelChannel
    default_port = 26379


if TYPE_CHECKING:  # pragma: no cover - mypy checks these; they never run
    from kombu.transport.protocols import ChannelProtocol, TransportErrors

    def _keeps_the_channel_contract(channel: Channel) -> ChannelProtocol:
        return channel

    def _declares_its_errors(transport: Transport) -> TransportErrors:
        return transport
