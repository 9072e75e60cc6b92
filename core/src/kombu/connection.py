"""Connection to a broker: URLs, failover, retries, channels and pools.

:class:`Connection` holds a broker's address and options, opens the
transport's connection on first use and hands out channels.  Retries follow
a :class:`~kombu.retry.RetryPolicy`; host lists and failover strategies come
from :mod:`kombu.failover`; URL parsing and query conversion from
:mod:`kombu.utils.url`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import quote

from kombu import observability
from kombu.exceptions import AccessRefused, OperationalError
from kombu.failover import (
    check_alternates,
    completes_round,
    failover_strategies,
    get_failover_strategy,
    split_host_port,
    split_hosts,
    with_primary,
)
from kombu.log import get_logger
from kombu.retry import RetryPolicy
from kombu.transport import get_transport_cls
from kombu.transport.transport_registry import registry
from kombu.utils.url import (
    CONNECTION_QUERY_PARAMS,
    as_url,
    coerce_query_value,
    connection_query_param,
    mask_password,
    maybe_sanitize_url,
    parse_url,
)

if TYPE_CHECKING:  # pragma: no cover
    from kombu.messaging import Consumer, Producer
    from kombu.resource import ChannelPool, ConnectionPool
    from kombu.simple import SimpleBuffer, SimpleQueue
    from kombu.transport.base import Management, Transport
    from kombu.transport.protocols import ChannelProtocol

__all__ = ("BrokerConnection", "ChannelPool", "Connection", "ConnectionPool", "PooledConnection",
           "failover_strategies", "maybe_channel", "is_connection")

logger = get_logger(__name__)
_LOG_CONNECTION = os.environ.get("KOMBU_LOG_CONNECTION", False)
_LOG_CHANNEL = os.environ.get("KOMBU_LOG_CHANNEL", False)

T = TypeVar("T")


#: Transport names written as another name in URLs (``as_uri``), as in kombu.
resolve_aliases = {"pyamqp": "amqp", "librabbitmq": "amqp"}

def _rebuild(cls: type[Connection], params: dict[str, Any]) -> Connection:
    """Unpickle a :class:`Connection` (see ``Connection.__reduce__``)."""
    return cls(**params)


class Connection:
    """A connection to a broker.

    :param hostname: host name, a URL (``'redis://localhost:6379/0'``),
        several URLs separated by ``;`` or a list of URLs (the rest become
        failover alternates).
    :param userid: user name.
    :param password: password (never shown by ``repr``/``as_uri``).
    :param virtual_host: virtual host (the database number for Redis).
    :param port: port; the transport's default when ``None``.
    :param insist: deprecated, ignored.
    :param ssl: ``True`` or a dict of TLS options for the transport.
    :param transport: transport name, ``'module:Class'`` path or class.
    :param connect_timeout: seconds allowed for connecting to one host.
    :param transport_options: transport-specific options; ``max_retries``,
        ``interval_start``, ``interval_step``, ``interval_max`` and
        ``connect_retries_timeout`` set the policy used when a channel is
        needed and the connection is down.
    :param login_method: SASL login method (AMQP).
    :param uri_prefix: prefix of ``prefix+scheme://`` URLs.
    :param heartbeat: heartbeat interval in seconds, 0 to disable.
    :param failover_strategy: ``'round-robin'``, ``'shuffle'`` or a callable
        that takes the list of URLs and returns an iterator of them.
    :param alternates: further URLs to fail over to.
    """

    port: int | None = None
    virtual_host = "/"
    connect_timeout: float = 5
    uri_prefix: str | None = None
    heartbeat: float | None = None
    hostname: str | None = None
    userid: str | None = None
    password: str | None = None
    ssl: Any = None
    login_method: str | None = None
    insist = False
    transport_cls: Any = None
    cycle: Iterator[str] | None = None
    #: The pool this connection belongs to (set by the pool that made it).
    _pool: ConnectionPool | None = None
    _connection: Any = None
    _default_channel: ChannelProtocol | None = None
    _transport: Transport | None = None
    _closed: bool | None = None
    _logger = False

    failover_strategies = failover_strategies
    resolve_aliases = resolve_aliases

    def __init__(self, hostname: str | Sequence[str] | None = "localhost",
                 userid: str | None = None, password: str | None = None,
                 virtual_host: str | None = None, port: int | None = None,
                 insist: bool = False, ssl: Any = False, transport: Any = None,
                 connect_timeout: float = 5, transport_options: dict[str, Any] | None = None,
                 login_method: str | None = None, uri_prefix: str | None = None,
                 heartbeat: float = 0, failover_strategy: Any = "round-robin",
                 alternates: Sequence[str] | None = None, credential_provider: Any = None,
                 **kwargs: Any) -> None:
        hostname, alt, single = split_hosts(hostname, alternates)
        transport_options = dict(transport_options or {})
        params: dict[str, Any] = {
            "hostname": hostname, "userid": userid, "password": password,
            "virtual_host": virtual_host, "port": port, "insist": insist, "ssl": ssl,
            "transport": transport, "connect_timeout": connect_timeout,
            "login_method": login_method, "heartbeat": heartbeat,
        }
        self.uri_prefix = uri_prefix
        if hostname and "://" in hostname:
            self._apply_url(hostname, params, transport_options)
        elif hostname:
            split_host_port(params)
        if alt and single and hostname:
            primary = hostname if "://" in hostname else params["hostname"]
            with_primary(alt, primary, params["port"], uri_prefix)
        check_alternates(alt)
        if failover_strategy in (None, "round-robin"):  # the URL's query may name one
            failover_strategy = params.pop("failover_strategy", failover_strategy)
        params.pop("failover_strategy", None)
        self.credential_provider = credential_provider
        self._initial_params = dict(params)
        self._init_params(**params)
        self.alt = alt
        self._failover_strategy = failover_strategy or "round-robin"
        self.failover_strategy = get_failover_strategy(failover_strategy,
                                                       self.failover_strategies)
        if self.alt:
            self.cycle = self.failover_strategy(self.alt)
            next(self.cycle)  # the first entry is the current host
        self.transport_options = transport_options
        if _LOG_CONNECTION:
            self._logger = True
        self.declared_entities: set[Any] = set()

    # -- URL handling --------------------------------------------------------
    def _apply_url(self, url: str, params: dict[str, Any],
                   transport_options: dict[str, Any]) -> None:
        scheme = url[:url.index("://")]
        if "+" in scheme:
            # e.g. sqla+postgresql://: the transport parses the rest itself.
            prefix, rest = url.split("+", 1)
            params["transport"], params["hostname"] = params["transport"] or prefix, rest
            self.uri_prefix = prefix
            return
        transport = params["transport"] or scheme
        params["transport"] = transport
        if getattr(get_transport_cls(transport), "can_parse_url", False):
            return
        parsed = parse_url(url)
        for key, value in parsed.items():
            if value is None or key == "transport":
                continue
            if key in CONNECTION_QUERY_PARAMS:
                params[key] = connection_query_param(url, key, value)
            elif key in params:
                params[key] = value
            else:
                transport_options.setdefault(key, coerce_query_value(value))
        params["hostname"] = parsed.get("hostname")

    def _init_params(self, hostname: str | None, userid: str | None, password: str | None,
                     virtual_host: str | None, port: int | None, insist: bool, ssl: Any,
                     transport: Any, connect_timeout: float, login_method: str | None,
                     heartbeat: float, **extra: Any) -> None:
        registry.check(transport)  # a bad name fails here, as its URL form does
        self.hostname = hostname
        self.userid = userid
        self.password = password
        self.login_method = login_method
        # Not inherited from the previous host when switching (kombu keeps
        # the old port when the alternate URL names none).
        self.virtual_host = virtual_host or Connection.virtual_host
        self.port = int(port) if port else None
        self.insist = insist
        self.connect_timeout = connect_timeout
        self.ssl = ssl
        self.transport_cls = transport or "amqp"
        self.heartbeat = float(heartbeat) if heartbeat else heartbeat

    # -- failover ------------------------------------------------------------
    def switch(self, conn_str: str) -> None:
        """Close the connection and point it at ``conn_str`` (a URL or host).

        A pooled connection keeps its pool slot: it is still in use.
        """
        self._close()
        self.declared_entities.clear()
        self._closed = False
        params = dict(self._initial_params)
        if "://" in conn_str:
            options = dict(self.transport_options)
            new: dict[str, Any] = {"hostname": None, "userid": None, "password": None,
                                   "virtual_host": None, "port": None,
                                   "transport": params["transport"]
                                   if isinstance(params["transport"], type) else None}
            self._apply_url(conn_str, new, options)
            params.update({k: v for k, v in new.items() if v is not None or k == "hostname"})
        else:
            params["hostname"] = conn_str
        self._init_params(**params)

    def maybe_switch_next(self) -> None:
        """Switch to the next alternate host, if there are alternates."""
        if self.cycle is not None:
            self.switch(next(self.cycle))

    def completes_cycle(self, retries: int) -> bool:
        """Whether attempt number ``retries`` (from 0) was the last host of a round."""
        return completes_round(retries, len(self.alt))

    # -- connecting ----------------------------------------------------------
    def connect(self) -> Connection:
        """Connect now (one attempt per host); return self."""
        self._connect_once_per_host()
        return self

    def _connect_once_per_host(self) -> Any:
        policy = RetryPolicy(max(len(self.alt) - 1, 0), 0, 0, 0)
        return self._ensure_connection(policy, reraise_as_library_errors=False)

    def ensure_connection(self, errback: Callable[[BaseException, float], Any] | None = None,
                          max_retries: int | None = None, interval_start: float = 2,
                          interval_step: float = 2, interval_max: float = 30,
                          callback: Callable[[], Any] | None = None,
                          reraise_as_library_errors: bool = True,
                          timeout: float | None = None) -> Connection:
        """Connect, retrying recoverable errors; return self (a context manager).

        :param errback: called as ``errback(exc, interval)`` after each failed
            attempt, with the seconds until the next one.
        :param max_retries: retries after the first attempt; ``None`` retries
            until ``timeout``, ``0`` makes a single attempt.
        :param interval_start: seconds to wait after a full round of hosts failed.
        :param interval_step: seconds added to the wait after each round.
        :param interval_max: the longest wait.
        :param callback: called about once a second while waiting.
        :param timeout: overall seconds allowed; the last error is raised
            when the next attempt would start after it.
        """
        connection, transport = self._connection, self._transport
        if connection is not None and transport is not None and \
                transport.verify_connection(connection):
            return self  # already connected: the common case, kept cheap
        policy = RetryPolicy(max_retries, interval_start, interval_step, interval_max, timeout)
        self._ensure_connection(policy, errback, callback, reraise_as_library_errors)
        return self

    def _ensure_connection(self, policy: RetryPolicy,
                           errback: Callable[[BaseException, float], Any] | None = None,
                           callback: Callable[[], Any] | None = None,
                           reraise_as_library_errors: bool = True) -> Any:
        """Connect unless connected, retrying as ``policy`` allows; return the
        transport's connection.

        A failed host is followed at once by the next alternate; the policy's
        interval is slept only after a whole round of hosts failed.
        """
        if self.connected:
            return self._connection
        budget = policy.start()
        retryable = self._retryable_connection_errors()
        with (self._reraise_as_library_errors() if reraise_as_library_errors
              else _nullcontext()):
            while True:
                try:
                    if budget.deadline is None:
                        return self._connection_factory()
                    return self._connect_within(budget.deadline)
                except retryable as exc:
                    if isinstance(exc, AccessRefused):
                        raise
                    round_done = self.completes_cycle(budget.retries)
                    wait = budget.next_interval() if round_done else 0.0
                    if budget.is_exhausted(wait):
                        raise
                    if errback is not None:
                        errback(exc, wait)
                    self._debug("connection error: %r; next attempt in %.2fs", exc, wait)
                    observability.maybe_switch_next(self, exc)
                    if wait:
                        _sleep_with_callback(wait, callback)
                    budget = budget.increment(waited=round_done)

    def _connect_within(self, deadline: float) -> Any:
        """One attempt whose connect timeout ends by ``deadline`` at the latest."""
        saved = self.connect_timeout
        left = max(deadline - monotonic(), 0.001)
        if not saved or left < saved:
            self.connect_timeout = left
        try:
            return self._connection_factory()
        finally:
            self.connect_timeout = saved

    def _retryable_connection_errors(self) -> tuple[type[BaseException], ...]:
        return self.recoverable_connection_errors

    def _connection_factory(self) -> Any:
        self.declared_entities.clear()
        self._default_channel = None
        if self._connection is not None:
            observability.connection_lost(self, None)
            self._collect_connection()
        connection = self._establish_connection()
        self._closed = False
        return connection

    def _collect_connection(self) -> None:
        """Free the socket of a connection found dead before replacing it.

        kombu overwrote it, so the socket stayed open until garbage collection.
        """
        stale, self._connection = self._connection, None
        transport = self.transport
        try:
            gc_transport = getattr(transport, "_collect", None)
            if gc_transport is not None:
                gc_transport(stale)
            else:
                transport.close_connection(stale)
        except self.connection_errors + (AttributeError, OSError):
            pass

    def _establish_connection(self) -> Any:
        self._debug("establishing connection...")
        conn = self._connection = self.transport.establish_connection()
        self._debug("connection established: %r", self)
        observability.connection_established(self)
        return conn

    @contextmanager
    def _reraise_as_library_errors(
            self, ConnectionError: type[Exception] = OperationalError,
            ChannelError: type[Exception] = OperationalError) -> Iterator[None]:
        try:
            yield
        except (ConnectionError, ChannelError, AccessRefused):
            raise
        except self.recoverable_connection_errors as exc:
            raise ConnectionError(self._error_text(exc)) from exc
        except self.recoverable_channel_errors as exc:
            raise ChannelError(self._error_text(exc)) from exc

    def _error_text(self, exc: BaseException) -> str:
        return f"{mask_password(str(exc) or type(exc).__name__, self.password)} " \
               f"(connecting to {self.as_uri()})"

    # -- retrying operations -------------------------------------------------
    def ensure(self, obj: Any, fun: Callable[..., T],
               errback: Callable[[BaseException, float], Any] | None = None,
               max_retries: int | None = None, interval_start: float = 1,
               interval_step: float = 1, interval_max: float = 1,
               on_revive: Callable[[Any], Any] | None = None,
               retry_errors: tuple[type[BaseException], ...] | None = None,
               timeout: float | None = None) -> Callable[..., T]:
        """Wrap ``fun`` so that connection errors reconnect and retry it.

        After a reconnect ``obj.revive(channel)`` is called with the new
        default channel (and ``on_revive(channel)`` if given), so producers
        and consumers re-declare what they need.  Channel errors are retried
        without reconnecting.  ``max_retries`` and ``timeout`` bound the
        whole operation, reconnects included.  A ``socket.timeout`` from
        ``fun`` while the connection is still up (``drain_events`` found
        nothing to do) is raised as it is.
        """
        retry_errors = tuple(retry_errors or ())
        policy = RetryPolicy(max_retries, interval_start, interval_step, interval_max, timeout)

        def _ensured(*args: Any, **kwargs: Any) -> T:
            budget = policy.start()
            conn_errors = self._retryable_connection_errors()
            chan_errors = tuple(self.recoverable_channel_errors)
            waited: socket.timeout | None = None
            with self._reraise_as_library_errors():
                while True:
                    try:
                        return fun(*args, **kwargs)
                    except AccessRefused:
                        raise
                    except retry_errors as exc:
                        if budget.is_exhausted():
                            raise
                        self._debug("ensure retry policy error: %r", exc)
                    except conn_errors as exc:
                        if isinstance(exc, socket.timeout) and self.connected:
                            waited = exc  # nothing to do in time: the connection is fine
                            break
                        if budget.is_exhausted():
                            raise
                        self._debug("ensure connection error: %r", exc)
                        observability.connection_lost(self, exc)
                        self.collect()
                        if errback is not None:
                            errback(exc, 0)
                        # The host that dropped us is suspect: start with the
                        # next one, and give every host a try per retry left.
                        observability.maybe_switch_next(self, exc)
                        self._ensure_connection(budget.for_reconnect(len(self.alt)), errback,
                                                reraise_as_library_errors=False)
                        channel = self.default_channel
                        obj.revive(channel)
                        if on_revive is not None:
                            on_revive(channel)
                    except chan_errors as exc:
                        if budget.is_exhausted():
                            raise
                        self._debug("ensure channel error: %r", exc)
                        if errback is not None:
                            errback(exc, 0)
                    budget = budget.increment(waited=False)
            assert waited is not None
            raise waited

        name = getattr(fun, "__name__", "fun")
        _ensured.__name__ = f"{name}(ensured)"
        _ensured.__doc__ = getattr(fun, "__doc__", None)
        _ensured.__module__ = getattr(fun, "__module__", __name__)
        return _ensured

    def autoretry(self, fun: Callable[..., T], channel: Any = None,
                  **ensure_options: Any) -> Callable[..., tuple[T, Any]]:
        """Wrap ``fun(*args, channel=...)`` to retry on connection errors.

        The wrapper returns ``(result, channel)``; the channel changes when
        a reconnect replaced it.  Connecting for the first channel counts
        against the same retry limits.
        """
        channels = [channel]
        connection = self

        class Revival:
            __name__ = getattr(fun, "__name__", "fun")
            __module__ = getattr(fun, "__module__", __name__)
            __doc__ = getattr(fun, "__doc__", None)

            def revive(self, channel: Any) -> None:
                channels[0] = channel

            def __call__(self, *args: Any, **kwargs: Any) -> tuple[T, Any]:
                if channels[0] is None:
                    connection._ensure_connection(RetryPolicy(max_retries=0),
                                                  reraise_as_library_errors=False)
                    self.revive(connection.default_channel)
                return fun(*args, channel=channels[0], **kwargs), channels[0]

        revive = Revival()
        return self.ensure(revive, revive, **ensure_options)

    def revive(self, new_channel: ChannelProtocol | None) -> None:
        """Drop the default channel if ``new_channel`` replaces it."""
        if self._default_channel is not None and new_channel is not self._default_channel:
            self.maybe_close_channel(self._default_channel)
            self._default_channel = None

    # -- channels and events -------------------------------------------------
    def channel(self) -> ChannelProtocol:
        """A new channel on this connection (connecting first if needed)."""
        chan: ChannelProtocol = self.transport.create_channel(self.connection)
        if _LOG_CHANNEL:  # pragma: no cover
            self._debug("channel created: %r", chan)
        return chan

    def drain_events(self, **kwargs: Any) -> Any:
        """Wait for one event; raise :exc:`socket.timeout` after ``timeout``."""
        return self.transport.drain_events(self.connection, **kwargs)

    def heartbeat_check(self, rate: float = 2) -> Any:
        """Send/verify heartbeats; call ``rate`` times per heartbeat interval."""
        return self.transport.heartbeat_check(self.connection, rate=rate)

    def get_heartbeat_interval(self) -> float:
        return self.transport.get_heartbeat_interval(self.connection)

    def maybe_close_channel(self, channel: ChannelProtocol) -> None:
        """Close ``channel``, ignoring connection and channel errors."""
        try:
            channel.close()
        except (self.connection_errors + self.channel_errors):
            pass

    @property
    def default_channel(self) -> ChannelProtocol:
        """The channel used by default (connecting, with retries, if needed).

        The retry policy comes from ``transport_options`` (``max_retries``,
        ``interval_start``, ``interval_step``, ``interval_max``,
        ``connect_retries_timeout``); by default it retries for
        ``connect_timeout`` seconds per host, so that a host that never
        answers does not use up the time of its alternates.
        """
        if self._default_channel is None or not self.connected:
            self._ensure_connection(self.default_channel_policy())
            if self._default_channel is None:
                self._default_channel = self.channel()
        return self._default_channel

    def default_channel_policy(self) -> RetryPolicy:
        """The :class:`~kombu.retry.RetryPolicy` of :attr:`default_channel`.

        The transport options ``max_retries``, ``interval_start``,
        ``interval_step``, ``interval_max`` and ``connect_retries_timeout``
        set it; the timeout defaults to ``connect_timeout`` per host.
        """
        timeout = self.connect_timeout
        if timeout and self.alt:
            timeout *= len(self.alt)
        return RetryPolicy.from_options(self.transport_options, timeout=timeout)

    def _extract_failover_opts(self) -> dict[str, Any]:
        """:meth:`default_channel_policy` as ``ensure_connection`` arguments."""
        policy = self.default_channel_policy()
        return {"max_retries": policy.max_retries, "interval_start": policy.interval_start,
                "interval_step": policy.interval_step, "interval_max": policy.interval_max,
                "timeout": policy.timeout}

    # -- closing -------------------------------------------------------------
    def _do_close_self(self) -> None:
        self.declared_entities.clear()
        if self._default_channel is not None:
            self.maybe_close_channel(self._default_channel)
            self._default_channel = None
        if self._connection is not None:
            try:
                self.transport.close_connection(self._connection)
            except self.connection_errors + (AttributeError, OSError):
                pass
            self._connection = None

    def _do_close_transport(self) -> None:
        if self._transport is not None:
            self._transport.client = None
            self._transport = None

    def _close(self) -> None:
        """Close the connection (and the transport) for real."""
        self._do_close_self()
        self._do_close_transport()
        self._debug("closed")
        self._closed = True

    def collect(self, socket_timeout: float | None = None) -> None:
        """Forget the connection without closing it cleanly (after a fork or error)."""
        if self._transport is not None:
            gc_transport = getattr(self._transport, "_collect", None)
            if gc_transport is not None:
                gc_transport(self._connection)
            else:
                old = socket.getdefaulttimeout()
                socket.setdefaulttimeout(socket_timeout)
                try:
                    self._do_close_self()
                except (socket.timeout, OSError):
                    pass
                finally:
                    socket.setdefaulttimeout(old)
        self._do_close_transport()
        self.declared_entities.clear()
        self._connection = None
        self._default_channel = None

    def release(self) -> None:
        """Give the connection back to its pool, or close it when not pooled."""
        pool = self._pool
        if pool is not None:
            pool.release(self)
        else:
            self._close()

    def close(self) -> None:
        """Close the connection; a pooled connection also goes back to its pool.

        The pool hands it out again unconnected: its next user connects it
        on first use.
        """
        self._close()
        pool = self._pool
        if pool is not None:
            self._closed = None
            pool.release(self)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        """Release the connection; a pooled one whose block raised goes back
        closed, and its next user gets a fresh connection."""
        pool = self._pool
        if pool is not None:
            from kombu.resource import exit_pooled

            if exit_pooled(self, pool, exc_type is not None):
                return
        self.release()

    # -- factories -----------------------------------------------------------
    def Pool(self, limit: int | None = None, preload: int | None = None,
             **kwargs: Any) -> ConnectionPool:
        """A pool of connections like this one (clones, connected lazily).

        :param limit: the most connections in use at a time.
        :param preload: how many of them to connect now rather than on first use.

        Further ``kwargs`` go to :class:`~kombu.resource.ConnectionPool`
        (``close_after_fork``).
        """
        from kombu.resource import ConnectionPool

        return ConnectionPool(self, limit=limit, preload=preload, **kwargs)

    def ChannelPool(self, limit: int | None = None, preload: int | None = None,
                    **kwargs: Any) -> ChannelPool:
        """A pool of channels on this connection (arguments as for :meth:`Pool`)."""
        from kombu.resource import ChannelPool

        return ChannelPool(self, limit=limit, preload=preload, **kwargs)

    def Producer(self, channel: Any = None, *args: Any, **kwargs: Any) -> Producer:
        from kombu.messaging import Producer

        return Producer(channel or self, *args, **kwargs)

    def Consumer(self, queues: Any = None, channel: Any = None, *args: Any,
                 **kwargs: Any) -> Consumer:
        from kombu.messaging import Consumer

        return Consumer(channel or self, queues, *args, **kwargs)

    def SimpleQueue(self, name: Any, no_ack: bool | None = None,
                    queue_opts: dict[str, Any] | None = None,
                    queue_args: dict[str, Any] | None = None,
                    exchange_opts: dict[str, Any] | None = None,
                    channel: Any = None, **kwargs: Any) -> SimpleQueue:
        """A :class:`~kombu.simple.SimpleQueue` named ``name``."""
        from kombu.simple import SimpleQueue

        return SimpleQueue(channel or self, name, no_ack=no_ack, queue_opts=queue_opts,
                           queue_args=queue_args, exchange_opts=exchange_opts, **kwargs)

    def SimpleBuffer(self, name: Any, no_ack: bool | None = None,
                     queue_opts: dict[str, Any] | None = None,
                     queue_args: dict[str, Any] | None = None,
                     exchange_opts: dict[str, Any] | None = None,
                     channel: Any = None, **kwargs: Any) -> SimpleBuffer:
        """A :class:`~kombu.simple.SimpleBuffer` (ephemeral, no acks) named ``name``."""
        from kombu.simple import SimpleBuffer

        return SimpleBuffer(channel or self, name, no_ack=no_ack, queue_opts=queue_opts,
                            queue_args=queue_args, exchange_opts=exchange_opts, **kwargs)

    # -- information ---------------------------------------------------------
    def _info(self, resolve: bool = True) -> list[tuple[str, Any]]:
        defaults = self.transport.default_connection_params if resolve else {}
        hostname = self.hostname or defaults.get("hostname")
        if self.uri_prefix:
            hostname = f"{self.uri_prefix}+{hostname}"
        return [
            ("hostname", hostname),
            ("userid", self.userid or defaults.get("userid")),
            ("password", self.password or defaults.get("password")),
            ("virtual_host", self.virtual_host or defaults.get("virtual_host")),
            ("port", self.port or defaults.get("port")),
            ("insist", self.insist),
            ("ssl", self.ssl),
            ("transport", self.transport_cls),
            ("connect_timeout", self.connect_timeout),
            ("transport_options", self.transport_options),
            ("login_method", self.login_method or defaults.get("login_method")),
            ("uri_prefix", self.uri_prefix),
            ("heartbeat", self.heartbeat),
            ("failover_strategy", self._failover_strategy),
            ("alternates", self.alt),
            ("credential_provider", self.credential_provider),
        ]

    def info(self) -> dict[str, Any]:
        """The connection's settings as a dict (includes the password)."""
        return dict(self._info())

    def clone(self, **kwargs: Any) -> Connection:
        """A new, unconnected connection with the same settings (and alternates)."""
        params = dict(self._info(resolve=False))
        if self.uri_prefix:
            params["hostname"] = self.hostname
        params.update(kwargs)
        return self.__class__(**params)

    def __eqhash__(self) -> tuple[Any, ...]:
        # kombu left out TLS, heartbeats and the alternates, so a pool group
        # handed a TLS connection the pool of a plain one.
        return (self.transport_cls, self.hostname, self.userid, self.password,
                self.virtual_host, self.port, repr(self.transport_options),
                repr(self.ssl), self.heartbeat, self.login_method, tuple(self.alt),
                id(self.credential_provider) if self.credential_provider else None)

    def as_uri(self, include_password: bool = False, mask: str = "**") -> str:
        """The connection as a URL; the password is masked unless asked for."""
        hostname = self.hostname or "localhost"
        if self.transport.can_parse_url:
            uri = hostname
            if self.uri_prefix:
                uri = f"{self.uri_prefix}+{hostname}"
            try:
                return self.transport.as_uri(uri, include_password, mask)
            except NotImplementedError:
                return uri if include_password else maybe_sanitize_url(uri, mask)
        info = self.info()
        transport = info["transport"]
        scheme = transport if isinstance(transport, str) else getattr(
            transport, "driver_type", transport.__name__.lower())
        scheme = self.resolve_aliases.get(scheme, scheme)  # pyamqp:// prints amqp://, as kombu
        vhost = info["virtual_host"]
        return as_url(scheme, hostname, info["port"], info["userid"], info["password"],
                      quote(vhost) if vhost else vhost,
                      sanitize=not include_password, mask=mask)

    def __repr__(self) -> str:
        return f"<Connection: {self.as_uri()} at {id(self):#x}>"

    def __reduce__(self) -> Any:
        # Unresolved, as clone() does: a URL without a host stays one (the
        # transport's default host is not added to the alternates).
        params = dict(self._info(resolve=False))
        if self.uri_prefix:
            params["hostname"] = self.hostname
        return _rebuild, (self.__class__, params), None

    def __copy__(self) -> Connection:
        return self.clone()

    def _debug(self, msg: str, *args: Any) -> None:
        if self._logger:  # pragma: no cover
            logger.debug(f"[Kombu connection:{id(self):#x}] {msg}", *args)

    # -- properties ----------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Whether the connection is established."""
        return self._connection is not None and bool(
            self.transport.verify_connection(self._connection))

    @property
    def connection(self) -> Any:
        """The transport's connection object (connecting if needed).

        Connecting tries each host once, as :meth:`connect` does.
        """
        if not self._closed:
            if not self.connected:
                return self._connect_once_per_host()
            return self._connection
        return None

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = self.create_transport()
        return self._transport

    def create_transport(self) -> Transport:
        return self.get_transport_cls()(client=self)  # type: ignore[no-any-return]

    def get_transport_cls(self) -> type:
        """The transport class (resolving the name on first use)."""
        cls = self.transport_cls
        if not isinstance(cls, type):
            cls = get_transport_cls(cls)
        return cls

    @property
    def host(self) -> str:
        """``hostname:port``."""
        return f"{self.hostname}:{self.port}"

    @property
    def manager(self) -> Management:
        return self.transport.manager

    def get_manager(self, *args: Any, **kwargs: Any) -> Management:
        return self.transport.get_manager(*args, **kwargs)

    @property
    def recoverable_connection_errors(self) -> tuple[type[BaseException], ...]:
        """Errors a reconnect can repair."""
        cls = self.get_transport_cls()
        try:
            return tuple(cls.recoverable_connection_errors)  # type: ignore[attr-defined]
        except AttributeError:
            return tuple(cls.connection_errors)  # type: ignore[attr-defined]

    @property
    def recoverable_channel_errors(self) -> tuple[type[BaseException], ...]:
        """Errors a new channel can repair."""
        cls = self.get_transport_cls()
        try:
            return tuple(cls.recoverable_channel_errors)  # type: ignore[attr-defined]
        except AttributeError:
            return ()

    @property
    def connection_errors(self) -> tuple[type[BaseException], ...]:
        return tuple(self.get_transport_cls().connection_errors)  # type: ignore[attr-defined]

    @property
    def channel_errors(self) -> tuple[type[BaseException], ...]:
        return tuple(self.get_transport_cls().channel_errors)  # type: ignore[attr-defined]

    @property
    def supports_heartbeats(self) -> bool:
        return bool(self.transport.implements.heartbeats)

    @property
    def is_evented(self) -> bool:
        return bool(self.transport.implements.asynchronous)

    def register_with_event_loop(self, loop: Any) -> None:
        """Let the transport add its file descriptors to an event loop (hub)."""
        self.transport.register_with_event_loop(self.connection, loop)

    def supports_exchange_type(self, exchange_type: str) -> bool:
        return exchange_type in self.transport.implements.exchange_type

    @property
    def qos_semantics_matches_spec(self) -> bool:
        return bool(self.transport.qos_semantics_matches_spec(self.connection))


BrokerConnection = Connection


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: Any) -> None:
        return None


def _sleep_with_callback(seconds: float, callback: Callable[[], Any] | None) -> None:
    """Sleep ``seconds``, calling ``callback`` about once a second."""
    end = monotonic() + seconds
    while True:
        left = end - monotonic()
        if left <= 0:
            return
        sleep(min(left, 1.0))
        if callback is not None:
            callback()


def maybe_channel(channel: Any) -> Any:
    """The default channel of a Connection, or ``channel`` itself."""
    if isinstance(channel, Connection):
        return channel.default_channel
    return channel


def is_connection(obj: Any) -> bool:
    return isinstance(obj, Connection)


class _PooledConnectionType(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return type.__instancecheck__(cls, obj) or (
            isinstance(obj, Connection) and obj._pool is not None)


class PooledConnection(Connection, metaclass=_PooledConnectionType):
    """A connection lent by a :class:`~kombu.resource.ConnectionPool`.

    Pools hand out clones of their connection (of its class); every
    connection a pool lent out is an instance of this class, so
    ``isinstance(conn, PooledConnection)`` tells pooled connections apart as
    in kombu 5.x.  A ``with`` block on one that raises gives it back closed.
    ``PooledConnection(pool, **kwargs)`` makes one by hand.
    """

    def __init__(self, pool: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool = pool


#: Helpers kombu 5.x's connection module imports, by name: their home module.
_HELPERS = {
    "HashedSeq": "kombu.utils.collections", "cached_property": "kombu.utils.objects",
    "dictfilter": "kombu.utils.functional", "lazy": "kombu.utils.functional",
    "retry_over_time": "kombu.utils.functional", "ssl_available": "kombu.utils.url",
    "supports_librabbitmq": "kombu.transport", "shufflecycle": "kombu.failover",
}


def __getattr__(name: str) -> Any:
    home = _HELPERS.get(name)
    if home is not None:
        import importlib

        return getattr(importlib.import_module(home), name)
    if name in ("ConnectionPool", "ChannelPool", "Resource"):
        from kombu import resource

        return getattr(resource, name)
    raise AttributeError(f"module 'kombu.connection' has no attribute {name!r}")
