"""Connection management of redis:// under faults (the fault proxy, closed ports).

The Redis side of ``tests/integration/test_connection_faults.py``: failover
across ``;``-joined URLs whose first host refuses or never answers, the
retry limits of ``ensure_connection`` and ``autoretry``, a retried publish
delivered once, and configuration errors that are raised at once instead of
retried.  A proxy whose upstream is a closed port (``dead_host``) accepts
the TCP connection, counts it, then resets it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.faultproxy import FaultProxy
from kombu import Connection, Consumer, Producer, Queue
from kombu.exceptions import ConnectionError as KombuConnectionError
from kombu.exceptions import OperationalError
from kombu_redis.transport import InvalidDatabase

pytestmark = pytest.mark.redis

Proxies = Callable[..., FaultProxy]
CONNECT_TIMEOUT = 1.0


@pytest.fixture
def db(redis_url: str) -> str:
    """The test database, as a URL path."""
    return "/" + redis_url.rsplit("/", 1)[1]


@pytest.fixture
def connections(connect: Any) -> Iterator[Callable[..., Connection]]:
    """``connections(url, **kwargs)``: Connections on the test's key prefix,
    collected after the test."""
    made: list[Connection] = []

    def make(url: str, **kwargs: Any) -> Connection:
        options = {"global_keyprefix": connect.prefix, **kwargs.pop("transport_options", {})}
        conn = Connection(url, transport_options=options, **kwargs)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.collect()


def _url(proxy: FaultProxy, db: str) -> str:
    return proxy.url("redis", db)


def _round_trip(conn: Connection, queue: Queue) -> Any:
    """Publish one message through ``conn`` and get it back."""
    Producer(conn).publish("through", routing_key=queue.name, declare=[queue])
    message = queue(conn.default_channel).get(no_ack=True)
    return message.payload if message is not None else None


# -- failover ------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["refuse", "reset"])
def test_a_refusing_first_host_fails_over_at_once(
        proxies: Proxies, dead_host: Callable[[], FaultProxy],
        connections: Callable[..., Connection], names: Any, db: str, fault: str) -> None:
    bad = dead_host() if fault == "reset" else proxies()
    if fault == "refuse":
        bad.refuse()
    good = proxies()
    conn = connections(f"{_url(bad, db)};{_url(good, db)}", connect_timeout=CONNECT_TIMEOUT)
    errors: list[BaseException] = []
    started = time.monotonic()
    # The untried alternate is tried without the 5 s interval.
    conn.ensure_connection(max_retries=3, interval_start=5,
                           errback=lambda exc, interval: errors.append(exc))
    assert time.monotonic() - started < CONNECT_TIMEOUT + 2
    assert conn.connected and conn.port == good.port
    assert len(errors) == 1 and isinstance(errors[0], conn.recoverable_connection_errors)
    assert _round_trip(conn, Queue(names("q"))) == "through"
    assert bad.connections_accepted == (1 if fault == "reset" else 0)
    assert good.connections_accepted >= 1


@pytest.mark.parametrize("entry", ["ensure_connection", "default_channel"])
def test_a_silent_first_host_costs_one_connect_timeout(
        proxies: Proxies, connections: Callable[..., Connection], names: Any, db: str,
        entry: str) -> None:
    silent, good = proxies(), proxies()
    silent.blackhole()  # accepts, then never answers
    conn = connections(f"{_url(silent, db)};{_url(good, db)}", connect_timeout=CONNECT_TIMEOUT)
    started = time.monotonic()
    if entry == "ensure_connection":
        conn.ensure_connection(max_retries=20, interval_start=10, timeout=120)
    else:
        assert conn.default_channel is not None
    elapsed = time.monotonic() - started
    assert conn.port == good.port
    # One connect timeout on the silent host, not the retry budget (>= 200 s).
    assert 0.8 * CONNECT_TIMEOUT <= elapsed < CONNECT_TIMEOUT + 3
    assert silent.connections_accepted == 1
    assert _round_trip(conn, Queue(names("q"))) == "through"


# -- retry limits --------------------------------------------------------------

@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_ensure_connection_gives_up_after_max_retries(
        dead_host: Callable[[], FaultProxy], connections: Callable[..., Connection], db: str,
        max_retries: int) -> None:
    host = dead_host()
    conn = connections(_url(host, db), connect_timeout=CONNECT_TIMEOUT)
    calls: list[tuple[BaseException, float]] = []
    with pytest.raises(OperationalError) as info:
        conn.ensure_connection(errback=lambda exc, interval: calls.append((exc, interval)),
                               max_retries=max_retries, interval_start=0.01,
                               interval_step=0.01, interval_max=0.02)
    assert len(calls) == max_retries
    assert host.connections_accepted == max_retries + 1
    assert all(isinstance(exc, conn.recoverable_connection_errors) for exc, _ in calls)
    assert isinstance(info.value.__cause__, conn.recoverable_connection_errors)
    assert not conn.connected


def test_ensure_connection_on_a_closed_port_counts_errbacks(
        connections: Callable[..., Connection], db: str) -> None:
    from helpers.sockets import free_port

    conn = connections(f"redis://127.0.0.1:{free_port()}{db}")
    calls: list[float] = []
    with pytest.raises(OperationalError) as info:
        conn.ensure_connection(errback=lambda exc, interval: calls.append(interval),
                               max_retries=3, interval_start=0.05, interval_step=0.05,
                               interval_max=0.12)
    # errback runs after every failed attempt but the last, with the wait to come.
    assert calls == [0.05, 0.1, 0.12]
    assert "Connection refused" in str(info.value)


@pytest.mark.parametrize("max_retries", [1, 3])
def test_autoretry_gives_up_after_max_retries(
        dead_host: Callable[[], FaultProxy], connections: Callable[..., Connection], db: str,
        max_retries: int) -> None:
    host = dead_host()
    conn = connections(_url(host, db), connect_timeout=CONNECT_TIMEOUT)
    calls: list[Any] = []
    errors: list[BaseException] = []

    def size(channel: Any = None) -> Any:
        calls.append(channel)
        return channel.client.dbsize()

    with pytest.raises(OperationalError) as info:
        conn.autoretry(size, max_retries=max_retries, interval_start=0.01, interval_step=0.01,
                       errback=lambda exc, interval: errors.append(exc))()
    assert len(errors) == max_retries
    assert host.connections_accepted == max_retries + 1
    assert calls == []
    assert isinstance(info.value.__cause__, conn.recoverable_connection_errors)


def test_autoretry_reconnects_after_a_cut_and_passes_the_new_channel(
        proxies: Proxies, connections: Callable[..., Connection], names: Any, db: str) -> None:
    proxy = proxies()
    conn = connections(_url(proxy, db))
    channels: list[Any] = []
    name = names("q")

    def purge(channel: Any = None) -> Any:
        channels.append(channel)
        return channel.queue_purge(name)  # on the channel's own connection

    run = conn.autoretry(purge, max_retries=3, interval_start=0.05)
    assert run()[0] == 0
    proxy.cut_all()
    result, second = run()
    assert result == 0
    assert second is not channels[0] and second is conn.default_channel
    assert channels == [channels[0], channels[0], second]
    assert proxy.connections_accepted >= 2


# -- publishing through a cut ----------------------------------------------------

def test_publish_retry_after_cut_before_send_is_delivered_once(
        proxies: Proxies, connections: Callable[..., Connection], connect: Any, names: Any,
        raw: Any, db: str) -> None:
    proxy = proxies()
    queue = Queue(names("q"))
    conn = connections(_url(proxy, db))
    producer = Producer(conn)
    producer.publish({"n": 0}, routing_key=queue.name, declare=[queue])
    errors: list[BaseException] = []
    policy = {"max_retries": 3, "interval_start": 0.05,
              "errback": lambda exc, interval: errors.append(exc)}
    key = connect.prefix + queue.name
    for n in range(1, 4):
        assert raw.llen(key) == n
        proxy.cut_all()  # the client does not know yet: its next command fails
        producer.publish({"n": n}, routing_key=queue.name, declare=[queue], retry=True,
                         retry_policy=policy)
    assert raw.llen(key) == 4
    assert len(errors) == 3
    assert all(isinstance(exc, conn.recoverable_connection_errors) for exc in errors)
    got: list[Any] = []
    with Consumer(connect(), [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]) as c:
        while len(got) < 4:
            c.connection.drain_events(timeout=5)
    assert sorted(b["n"] for b in got) == [0, 1, 2, 3]
    assert raw.llen(key) == 0


# -- configuration errors are not retried ----------------------------------------

def test_a_database_out_of_range_is_refused_at_once(raw: Any) -> None:
    databases = int(raw.config_get("databases")["databases"])
    conn = Connection(f"redis://127.0.0.1:6379/{databases}")
    errors: list[BaseException] = []
    try:
        for attempt in (
                lambda: conn.ensure_connection(max_retries=5, interval_start=1,
                                               errback=lambda exc, i: errors.append(exc)),
                lambda: conn.default_channel,
                lambda: Producer(conn).publish("x", routing_key="nowhere", retry=True,
                                               retry_policy={"max_retries": 5,
                                                             "interval_start": 1})):
            started = time.monotonic()
            with pytest.raises(InvalidDatabase) as info:
                attempt()
            assert time.monotonic() - started < 1, "a refused database was retried"
            text = str(info.value)
            assert f"no database {databases}" in text
            assert f"0 to {databases - 1}" in text and "redis://host:port/<db>" in text
            assert isinstance(info.value, KombuConnectionError)
            assert not isinstance(info.value, conn.recoverable_connection_errors)
        assert errors == []
    finally:
        conn.collect()


@pytest.mark.parametrize("vhost", ["abc", "-1", "1.5"])
def test_a_virtual_host_that_is_no_database_number_is_refused(vhost: str,
                                                             redis_url: str) -> None:
    conn = Connection(f"redis://127.0.0.1:6379/{vhost}")
    errors: list[BaseException] = []
    try:
        with pytest.raises(InvalidDatabase) as info:
            conn.ensure_connection(max_retries=5, interval_start=1,
                                   errback=lambda exc, i: errors.append(exc))
        assert errors == []
        assert repr(vhost) in str(info.value) and "database number" in str(info.value)
        assert isinstance(info.value, ValueError)  # as before: a bad URL
    finally:
        conn.collect()
