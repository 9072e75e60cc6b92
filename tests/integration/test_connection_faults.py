"""Connection management under faults: FaultProxy in front of a real RabbitMQ.

Failover across hosts that refuse, reset or never answer; retry limits and
deadlines of ensure_connection/ensure/autoretry; a retried publish delivered
once; heartbeats that notice a stalled peer.  Each broker "host" is a proxy
of its own in front of the one RabbitMQ, so a test can fail any of them.

A proxy whose upstream is a closed port accepts the TCP connection (and
counts it) and then resets it: that is a refusing host whose attempts can be
counted.  ``refuse()`` closes the proxy's port, which counts nothing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.faultproxy import FaultProxy, proxy_factory
from helpers.sockets import free_port
from kombu import Connection, Queue
from kombu.exceptions import AccessRefused, OperationalError

pytest.importorskip("kombu_pyamqp", reason="these tests need the kombu-pyamqp transport")

pytestmark = pytest.mark.rabbitmq

BROKER = ("127.0.0.1", 5672)
Proxies = Callable[..., FaultProxy]




def _url(proxy: FaultProxy, password: str = "guest") -> str:
    return f"amqp://guest:{password}@127.0.0.1:{proxy.port}//"


def _failover_url(*proxies: FaultProxy) -> str:
    return ";".join(_url(proxy) for proxy in proxies)


@pytest.fixture
def proxies(amqp_url: str) -> Iterator[Proxies]:
    """``proxies(upstream=BROKER)``: started proxies, stopped after the test."""
    with proxy_factory(BROKER) as make:
        yield make


@pytest.fixture
def dead_host(proxies: Proxies) -> Callable[[], FaultProxy]:
    """``dead_host()``: a proxy that accepts, counts, then resets every client."""
    return lambda: proxies(("127.0.0.1", free_port()))


@pytest.fixture
def connections() -> Iterator[Callable[..., Connection]]:
    """``connections(*args, **kwargs)``: Connections collected after the test."""
    made: list[Connection] = []

    def make(*args: Any, **kwargs: Any) -> Connection:
        conn = Connection(*args, **kwargs)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.collect()


@pytest.fixture
def direct(amqp_url: str) -> Iterator[Connection]:
    """A connection straight to RabbitMQ, to look at queues behind the proxies' back."""
    conn = Connection(amqp_url)
    yield conn
    conn.release()


@pytest.fixture
def queues(direct: Connection, unique: Callable[..., str]) -> Iterator[Callable[[], Queue]]:
    """``queues()``: a new non-durable queue name; every one is deleted afterwards."""
    made: list[Queue] = []

    def make() -> Queue:
        queue = Queue(unique("q"), durable=False, auto_delete=False)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue(direct.default_channel).delete()


def _message_count(direct: Connection, queue: Queue) -> int:
    return int(queue(direct.default_channel).queue_declare(passive=True).message_count)


def _wait_count(direct: Connection, queue: Queue, expected: int, timeout: float = 10.0) -> int:
    """Wait until ``queue`` holds ``expected`` messages (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        count = _message_count(direct, queue)
        if count >= expected or time.monotonic() >= deadline:
            return count
        time.sleep(0.02)


def _drain_all(direct: Connection, queue: Queue, limit: int = 100_000) -> list[Any]:
    bound = queue(direct.default_channel)
    payloads = []
    for _ in range(limit):
        message = bound.get(no_ack=True)
        if message is None:
            break
        payloads.append(message.payload)
    return payloads


def _wait_dead(conn: Connection, timeout: float = 10.0) -> BaseException:
    """Drain events until the connection reports its loss; return the error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=0.2)
        except socket.timeout:
            continue
        except conn.recoverable_connection_errors as exc:
            return exc
    raise AssertionError(f"the connection did not notice it was cut within {timeout}s")


# -- failover ------------------------------------------------------------------

def test_refusing_first_host_fails_over_at_once(proxies: Proxies,
                                                connections: Callable[..., Connection]) -> None:
    bad, good = proxies(), proxies()
    bad.refuse()
    url = _failover_url(bad, good)
    started = time.monotonic()
    conn = connections(url).connect()
    assert conn.connected and conn.port == good.port
    # ensure_connection: the untried host is tried without the 5 s interval.
    again = connections(url)
    again.ensure_connection(max_retries=3, interval_start=5)
    assert again.connected and again.port == good.port
    # and so does the first use of a channel
    third = connections(url)
    third.channel().close()
    assert third.port == good.port
    assert time.monotonic() - started < 4
    assert good.connections_accepted == 3


def test_blackholed_first_host_costs_one_connect_timeout(
        proxies: Proxies, connections: Callable[..., Connection]) -> None:
    silent, good = proxies(), proxies()
    silent.blackhole()
    conn = connections(_failover_url(silent, good), connect_timeout=1)
    started = time.monotonic()
    conn.ensure_connection(max_retries=20, interval_start=10, timeout=120)
    elapsed = time.monotonic() - started
    assert conn.connected and conn.port == good.port
    # One connect timeout on the silent host, not the retry budget (>= 200 s).
    assert 0.8 <= elapsed < 5
    assert silent.connections_accepted == 1 and good.connections_accepted == 1


def test_default_channel_fails_over_past_a_blackholed_host(
        proxies: Proxies, connections: Callable[..., Connection]) -> None:
    silent, good = proxies(), proxies()
    silent.blackhole()
    conn = connections(_failover_url(silent, good), connect_timeout=1)
    started = time.monotonic()
    channel = conn.default_channel
    assert channel is not None and conn.port == good.port
    assert time.monotonic() - started < 5


def test_round_robin_order_and_intervals_across_three_hosts(
        dead_host: Callable[[], FaultProxy], connections: Callable[..., Connection]) -> None:
    hosts = [dead_host(), dead_host(), dead_host()]
    conn = connections(_failover_url(*hosts), connect_timeout=2)
    seen: list[tuple[int | None, float]] = []
    with pytest.raises(OperationalError):
        conn.ensure_connection(errback=lambda exc, interval: seen.append((conn.port, interval)),
                               max_retries=6, interval_start=0.05, interval_step=0.05,
                               interval_max=1)
    a, b, c = (h.port for h in hosts)
    # Each round visits every host once; the interval applies only after a
    # whole round failed, and grows by interval_step per round.
    assert seen == [(a, 0), (b, 0), (c, 0.05), (a, 0), (b, 0), (c, 0.1)]
    assert conn.port == a  # the seventh attempt
    assert [h.connections_accepted for h in hosts] == [3, 2, 2]


def test_round_robin_reaches_the_only_live_host(
        dead_host: Callable[[], FaultProxy], proxies: Proxies,
        connections: Callable[..., Connection]) -> None:
    first, second, live = dead_host(), dead_host(), proxies()
    conn = connections(_failover_url(first, second, live))
    conn.ensure_connection(max_retries=2, interval_start=5)
    assert conn.connected and conn.port == live.port
    assert (first.connections_accepted, second.connections_accepted,
            live.connections_accepted) == (1, 1, 1)


def test_dropped_connection_fails_over_to_the_next_host(
        proxies: Proxies, connections: Callable[..., Connection], direct: Connection,
        queues: Callable[[], Queue]) -> None:
    """kombu #2330: a connection lost later moves on to the next host."""
    a, b, c = proxies(), proxies(), proxies()
    queue = queues()
    conn = connections(_failover_url(a, b, c), connect_timeout=2)
    producer = conn.Producer()
    producer.publish("on a", routing_key=queue.name, declare=[queue])
    assert conn.port == a.port
    # (each publish reaches the broker before its host is cut: without
    # confirms the proxy would drop a message still in flight)
    assert _wait_count(direct, queue, 1) == 1
    policy = {"max_retries": 4, "interval_start": 0.1}

    # a goes away: the retried publish lands through b, once.
    a.refuse()
    a.cut_all()
    producer.publish("on b", routing_key=queue.name, declare=[queue], retry=True,
                     retry_policy=policy)
    assert conn.port == b.port
    assert _wait_count(direct, queue, 2) == 2

    # b goes away and a comes back: round-robin moves on to c, not back to a.
    a.forward()
    b.refuse()
    b.cut_all()
    assert isinstance(_wait_dead(conn), conn.recoverable_connection_errors)
    conn.ensure_connection(max_retries=4, interval_start=0.1)
    assert conn.port == c.port
    producer.publish("on c", routing_key=queue.name, declare=[queue], retry=True,
                     retry_policy=policy)
    assert _wait_count(direct, queue, 3) == 3

    # c goes away: the cycle wraps around to a.
    c.refuse()
    c.cut_all()
    producer.publish("on a again", routing_key=queue.name, declare=[queue], retry=True,
                     retry_policy=policy)
    assert conn.port == a.port
    assert _wait_count(direct, queue, 4) == 4
    assert sorted(_drain_all(direct, queue)) == sorted(["on a", "on b", "on c", "on a again"])


# -- retry limits and deadlines --------------------------------------------------

@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_ensure_connection_makes_max_retries_plus_one_attempts(
        dead_host: Callable[[], FaultProxy], connections: Callable[..., Connection],
        max_retries: int) -> None:
    host = dead_host()
    conn = connections(_url(host), connect_timeout=2)
    with pytest.raises(OperationalError) as info:
        conn.ensure_connection(max_retries=max_retries, interval_start=0.01)
    assert host.connections_accepted == max_retries + 1
    assert isinstance(info.value.__cause__, conn.recoverable_connection_errors)
    assert "guest:guest" not in str(info.value)
    assert not conn.connected


def test_ensure_connection_on_a_refused_port_counts_errbacks(
        connections: Callable[..., Connection]) -> None:
    conn = connections(f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    calls: list[tuple[BaseException, float]] = []
    with pytest.raises(OperationalError) as info:
        conn.ensure_connection(errback=lambda exc, interval: calls.append((exc, interval)),
                               max_retries=3, interval_start=0.05, interval_step=0.05,
                               interval_max=0.12)
    # errback runs after every failed attempt but the last, with the wait to come.
    assert [interval for _, interval in calls] == [0.05, 0.1, 0.12]
    assert all(isinstance(exc, ConnectionRefusedError) for exc, _ in calls)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_ensure_connection_timeout_bounds_wall_time(
        proxies: Proxies, connections: Callable[..., Connection]) -> None:
    silent = proxies()
    silent.blackhole()
    conn = connections(_url(silent), connect_timeout=1)
    ticks: list[float] = []
    started = time.monotonic()
    with pytest.raises(OperationalError):
        conn.ensure_connection(max_retries=None, interval_start=0.3, interval_step=0,
                               timeout=3, callback=lambda: ticks.append(time.monotonic()))
    elapsed = time.monotonic() - started
    # No attempt starts after the deadline; the one in progress may end up
    # to connect_timeout later.
    assert 1.5 < elapsed < 3 + 1 + 2
    assert 2 <= silent.connections_accepted <= 3
    assert ticks, "callback is called while waiting between attempts"


def test_ensure_gives_up_after_max_retries_on_a_dead_broker(
        proxies: Proxies, connections: Callable[..., Connection],
        queues: Callable[[], Queue]) -> None:
    proxy = proxies()
    conn = connections(_url(proxy), connect_timeout=1)
    queue = queues()
    producer = conn.Producer()
    producer.publish("hello", routing_key=queue.name, declare=[queue])
    proxy.refuse()
    proxy.cut_all()
    errors: list[BaseException] = []
    started = time.monotonic()
    with pytest.raises(OperationalError):
        producer.publish("lost", routing_key=queue.name, retry=True,
                         retry_policy={"max_retries": 2, "interval_start": 0.1,
                                       "errback": lambda exc, interval: errors.append(exc)})
    assert time.monotonic() - started < 10
    # the failed publish, then max_retries reconnect attempts in all
    assert 2 <= len(errors) <= 3
    assert not conn.connected


def test_ensure_redeclares_and_revives_after_a_reconnect(
        proxies: Proxies, connections: Callable[..., Connection], direct: Connection,
        queues: Callable[[], Queue]) -> None:
    """After a reconnect, ensure() revives the producer and declares its queue again.

    The queue is deleted while the connection is down, as a broker restart
    loses a non-durable queue: a publish that did not declare it again
    would be dropped by the default exchange.
    """
    proxy = proxies()
    queue = queues()
    conn = connections(_url(proxy))
    producer = conn.Producer()
    publish = conn.ensure(producer, producer.publish, max_retries=3, interval_start=0.05)
    publish({"n": 1}, routing_key=queue.name, declare=[queue])
    first_channel = producer.channel
    assert _wait_count(direct, queue, 1) == 1
    queue(direct.default_channel).delete()
    proxy.cut_all()
    _wait_dead(conn)
    publish({"n": 2}, routing_key=queue.name, declare=[queue])
    assert producer.channel is not first_channel
    assert producer.channel is conn.default_channel
    assert proxy.connections_accepted == 2
    assert _wait_count(direct, queue, 1) == 1
    assert _drain_all(direct, queue) == [{"n": 2}]


def test_autoretry_honours_max_retries_when_it_cannot_connect(
        dead_host: Callable[[], FaultProxy], connections: Callable[..., Connection]) -> None:
    """kombu #829: autoretry used to reconnect forever before its first call."""
    host = dead_host()
    conn = connections(_url(host), connect_timeout=2)
    calls: list[Any] = []

    def declare(channel: Any = None) -> Any:
        calls.append(channel)
        return channel.queue_declare("", exclusive=True)

    started = time.monotonic()
    with pytest.raises(OperationalError):
        conn.autoretry(declare, max_retries=2, interval_start=0.05)()
    assert time.monotonic() - started < 10
    assert host.connections_accepted == 3
    assert calls == []


def test_autoretry_reconnects_and_passes_the_new_channel(
        proxies: Proxies, connections: Callable[..., Connection]) -> None:
    proxy = proxies()
    conn = connections(_url(proxy))
    channels: list[Any] = []

    def declare(channel: Any = None) -> Any:
        channels.append(channel)
        return channel.queue_declare("", exclusive=True).queue

    run = conn.autoretry(declare, max_retries=3, interval_start=0.05)
    name, first = run()
    assert name.startswith("amq.gen-")
    proxy.cut_all()
    name2, second = run()
    assert name2.startswith("amq.gen-") and name2 != name
    assert second is not first and second is conn.default_channel
    assert proxy.connections_accepted == 2


def test_wrong_credentials_are_raised_at_once_not_failed_over(
        proxies: Proxies, connections: Callable[..., Connection]) -> None:
    first, second = proxies(), proxies()
    url = f"{_url(first, 'bad-secret')};{_url(second, 'bad-secret')}"
    started = time.monotonic()
    for attempt in (lambda c: c.ensure_connection(max_retries=None, interval_start=1, timeout=60),
                    lambda c: c.default_channel,
                    lambda c: c.autoretry(lambda channel=None: None, max_retries=5)()):
        with pytest.raises(AccessRefused) as info:
            attempt(connections(url))
        assert "bad-secret" not in str(info.value)
        assert "password" in str(info.value)
    assert time.monotonic() - started < 8
    # one login per call, none of them retried on the alternate
    assert first.connections_accepted == 3
    assert second.connections_accepted == 0


# -- publishing through a cut ----------------------------------------------------

def test_publish_retry_after_cut_before_send_is_delivered_once(
        proxies: Proxies, connections: Callable[..., Connection], direct: Connection,
        queues: Callable[[], Queue]) -> None:
    proxy = proxies()
    queue = queues()
    conn = connections(_url(proxy))
    producer = conn.Producer()
    producer.publish({"n": 0}, routing_key=queue.name, declare=[queue])
    errors: list[BaseException] = []
    policy = {"max_retries": 3, "interval_start": 0.05,
              "errback": lambda exc, interval: errors.append(exc)}
    for n in range(1, 4):
        # Without confirms a publish is done once written: let it reach the
        # broker before cutting, or the proxy would drop it.
        assert _wait_count(direct, queue, n) == n
        proxy.cut_all()  # the client does not know yet: its next write fails
        producer.publish({"n": n}, routing_key=queue.name, declare=[queue], retry=True,
                         retry_policy=policy)
    assert _wait_count(direct, queue, 4) == 4
    assert len(errors) == 3
    assert proxy.connections_accepted == 4
    payloads = _drain_all(direct, queue)
    assert sorted(p["n"] for p in payloads) == [0, 1, 2, 3]


def test_publish_retry_waits_for_a_broker_that_comes_back(
        proxies: Proxies, connections: Callable[..., Connection], direct: Connection,
        queues: Callable[[], Queue]) -> None:
    proxy = proxies()
    queue = queues()
    conn = connections(_url(proxy))
    producer = conn.Producer()
    producer.publish("before", routing_key=queue.name, declare=[queue])
    assert _wait_count(direct, queue, 1) == 1
    proxy.refuse()
    proxy.cut_all()
    back = threading.Timer(1.0, proxy.forward)
    back.start()
    try:
        started = time.monotonic()
        producer.publish("while down", routing_key=queue.name, declare=[queue], retry=True,
                         retry_policy={"max_retries": 60, "interval_start": 0.1,
                                       "interval_step": 0.1, "interval_max": 0.2})
        assert 0.8 < time.monotonic() - started < 15
    finally:
        back.cancel()
        back.join(5)
    assert _wait_count(direct, queue, 2) == 2
    assert _drain_all(direct, queue) == ["before", "while down"]


def test_confirmed_publishes_survive_a_cut_mid_frame(
        proxies: Proxies, connections: Callable[..., Connection], direct: Connection,
        queues: Callable[[], Queue]) -> None:
    proxy = proxies()
    queue = queues()
    conn = connections(_url(proxy), transport_options={"confirm_publish": True})
    producer = conn.Producer()
    producer.publish({"i": -1}, routing_key=queue.name, declare=[queue])
    cuts: list[BaseException] = []

    def on_cut(exc: BaseException, interval: float) -> None:
        cuts.append(exc)
        proxy.forward()  # reconnections are not cut again

    proxy.cut_after(30_000)  # some 100 messages, then a reset in the middle of one
    total = 300
    confirmed = []
    for i in range(total):
        producer.publish({"i": i, "pad": "x" * 250}, routing_key=queue.name, declare=[queue],
                         retry=True, retry_policy={"max_retries": 3, "interval_start": 0.05,
                                                   "errback": on_cut})
        confirmed.append(i)
    assert len(cuts) == 1
    assert proxy.connections_accepted == 2
    ids = [p["i"] for p in _drain_all(direct, queue)]
    # Nothing confirmed is lost; at most the message in flight at the cut
    # (sent, but not yet confirmed) is there twice.
    assert set(ids) == {-1, *confirmed}
    assert total + 1 <= len(ids) <= total + 2


# -- heartbeats --------------------------------------------------------------------

@pytest.mark.slow
def test_heartbeat_check_detects_a_stalled_peer(proxies: Proxies,
                                                connections: Callable[..., Connection]) -> None:
    proxy = proxies()
    conn = connections(_url(proxy), heartbeat=2)
    conn.connect()
    assert conn.supports_heartbeats and conn.get_heartbeat_interval() == 2

    def tick() -> None:
        conn.heartbeat_check(rate=2)
        try:
            conn.drain_events(timeout=0.25)
        except socket.timeout:
            pass

    # A healthy but idle connection is not reported for well over 2 intervals.
    healthy_until = time.monotonic() + 5
    while time.monotonic() < healthy_until:
        tick()
    assert conn.connected

    proxy.stall()
    started = time.monotonic()
    with pytest.raises(conn.recoverable_connection_errors):
        while time.monotonic() - started < 15:
            tick()
    # amqp declares the peer dead two intervals after the last frame it got
    # (measured here: 4.0 s); not earlier, and not much later.
    detected = time.monotonic() - started
    assert 2 * 2 - 1 <= detected < 2 * 2 + 2, f"detected after {detected:.2f}s"

    # The application's usual recovery: forget the dead connection, reconnect.
    proxy.forward()
    conn.collect()
    conn.ensure_connection(max_retries=3, interval_start=0.1)
    assert conn.connected and proxy.connections_accepted == 2
    conn.default_channel.queue_declare("", exclusive=True)
