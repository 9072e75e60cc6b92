"""Connections cut under load (the fault proxy) lose no message."""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.faultproxy import FaultProxy
from kombu import Consumer, Producer, Queue

pytestmark = pytest.mark.redis

N = 3000
#: Consumer connection cuts, and publisher connection cuts (one per PUBLISHER_CUT_EVERY).
CONSUMER_CUTS = 6
PUBLISHER_CUT_EVERY = 500
OPTIONS = {"visibility_timeout": 1, "unacked_restore_interval": 0.2}
#: Reconnect quickly, and for long enough to ride out a restart.
RETRY = {"max_retries": 100, "interval_start": 0.05, "interval_step": 0.05, "interval_max": 0.3}


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", 6379)) as fault_proxy:
        yield fault_proxy


def _redelivered(message: Any) -> bool:
    return bool(message.delivery_info.get("redelivered"))


class _Publisher(threading.Thread):
    """Publishes 0..n-1 through ``connection.ensure``; counts the retried publishes.

    With ``cut`` it resets its own connections every ``PUBLISHER_CUT_EVERY``
    messages, between two publishes: the next one meets a dead connection
    before its command was sent.
    """

    def __init__(self, connection: Any, queue: Queue, n: int,
                 cut: FaultProxy | None = None) -> None:
        super().__init__(daemon=True)
        self.queue, self.n, self.cut = queue, n, cut
        self.attempts: collections.Counter[int] = collections.Counter()
        self.cuts = 0
        self.producer = Producer(connection)
        self.publish = connection.ensure(self.producer, self._send, **RETRY)

    def _send(self, i: int) -> None:
        self.attempts[i] += 1
        self.producer.publish(i, routing_key=self.queue.name)

    @property
    def retried(self) -> int:
        return sum(self.attempts.values()) - len(self.attempts)

    def run(self) -> None:
        for i in range(self.n):
            if self.cut is not None and i and i % PUBLISHER_CUT_EVERY == 0:
                self.cut.cut_all()
                self.cuts += 1
            self.publish(i)
            if i % 20 == 0:
                time.sleep(0.005)


@pytest.mark.timeout(90)
def test_cut_connections_lose_nothing(proxies: Any, connect: Any, names: Any, raw: Any,
                                      redis_url: str, check_deliveries: Any) -> None:
    """Consumer and publisher connections are cut mid-stream.

    The consumer's connections are cut inside a callback, before its ack,
    and Redis stays unreachable until the consumer gave up its channel, so
    the messages it held come back only through the visibility timeout
    (delivered again, flagged).  It reconnects as Celery does (close,
    ``ensure_connection``, consume again).
    """
    db = "/" + redis_url.rsplit("/", 1)[1]
    to_publisher, to_consumer = proxies(), proxies()
    publisher = connect(url=to_publisher.url("redis", db), **OPTIONS)
    conn = connect(url=to_consumer.url("redis", db), **OPTIONS)
    queue = Queue(names("q"))
    queue(publisher.default_channel).declare()
    thread = _Publisher(publisher, queue, N, cut=to_publisher)
    thread.start()
    seen: list[tuple[int, str, bool, str]] = []
    consumer = ["c0"]  # this connection's life between reconnects
    lost: set[str] = set()
    held_at_cut: list[int] = []  # messages the consumer held (fetched, unacked) at each cut

    def cut() -> None:
        held_at_cut.append(len(conn.default_channel.held_tags()))
        lost.add(consumer[0])
        to_consumer.refuse()
        to_consumer.cut_all()

    def on_message(body: Any, message: Any) -> None:
        if len(held_at_cut) < CONSUMER_CUTS and len(seen) >= 150 + 400 * len(held_at_cut):
            cut()
        message.ack()
        seen.append((body, message.delivery_tag, _redelivered(message), consumer[0]))

    def done() -> bool:
        return {b for b, *_ in seen} == set(range(N)) and not thread.is_alive()

    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, f"{len({b for b, *_ in seen})} of {N} received"
        try:
            with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=25):
                while not done():
                    assert time.monotonic() < deadline
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        pass
        except conn.connection_errors:
            conn.close()  # Redis is unreachable: the records come back after 1s
            to_consumer.forward()
            conn.ensure_connection(**RETRY)
            consumer[0] = f"c{len(lost)}"
    thread.join(10)
    assert len(held_at_cut) == CONSUMER_CUTS and thread.cuts == N // PUBLISHER_CUT_EVERY - 1
    assert thread.retried == thread.cuts, "a cut before the send costs exactly one retry"
    conn.close()
    time.sleep(1.5)  # let the last visibility timeout pass, then collect the rest
    consumer[0] = "final"
    with Consumer(publisher, [queue], callbacks=[on_message]):
        while True:
            try:
                publisher.drain_events(timeout=1.5)
            except TimeoutError:
                break
            assert time.monotonic() < deadline + 20
    check_deliveries(seen, set(range(N)), lost)
    assert len(seen) > N, "no cut made a consumer lose a message it held"
    assert raw.llen(connect.prefix + queue.name) == 0
    assert raw.hlen(connect.prefix + "unacked") == 0


@pytest.mark.timeout(90)
def test_redis_restart_with_persistence_loses_nothing(redis_server: Any, tmp_path: Path,
                                                      names: Any, check_deliveries: Any) -> None:
    """A consumer driven by ``Connection.ensure`` rides out a Redis restart.

    The server (appendonly, fsync always) stops while messages are queued and
    held, stays down for a second, then starts again on the same port with
    the same data.  The consumer has no error handling of its own: ``ensure``
    reconnects, revives it and consumes again.
    """
    from kombu import Connection

    persist = ("--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path))
    servers = [redis_server(*persist)]
    port = servers[0].port
    url = f"redis://127.0.0.1:{port}/0"
    queue = Queue(names("q"))
    n = 1000
    seen: list[tuple[int, str, bool, str]] = []
    consumer_name = ["c0"]
    lost: set[str] = set()
    reconnects: list[BaseException] = []

    def on_message(body: Any, message: Any) -> None:
        message.ack()
        seen.append((body, message.delivery_tag, _redelivered(message), consumer_name[0]))

    def restart() -> None:
        lost.add(consumer_name[0])
        servers[0].stop()
        time.sleep(1.0)
        servers[0] = redis_server(*persist, port=port)

    with Connection(url, transport_options=OPTIONS) as pub, \
            Connection(url, transport_options=OPTIONS) as conn:
        queue(pub.default_channel).declare()
        thread = _Publisher(pub, queue, n)
        consumer = Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10)
        consumer.consume()

        def drain_once() -> None:
            try:
                conn.drain_events(timeout=0.5)
            except socket.timeout:
                pass

        def on_revive(channel: Any) -> None:
            lost.add(consumer_name[0])
            consumer_name[0] = f"c{len(lost)}"
            consumer.consume()

        drain = conn.ensure(consumer, drain_once, on_revive=on_revive,
                            errback=lambda exc, interval: reconnects.append(exc), **RETRY)
        thread.start()
        restarter = threading.Thread(target=restart)
        deadline = time.monotonic() + 60
        while {b for b, *_ in seen} != set(range(n)) or thread.is_alive():
            assert time.monotonic() < deadline, f"{len({b for b, *_ in seen})} received"
            if not restarter.is_alive() and len(seen) > n // 3 and not lost:
                restarter.start()
            drain()
        restarter.join(20)
        thread.join(10)
        consumer.cancel()
    assert lost and reconnects, "the consumer did not meet the restart"
    check_deliveries(seen, set(range(n)), lost, republished=thread.retried)


def test_a_silent_server_fails_within_connect_timeout(proxy: FaultProxy, redis_url: str) -> None:
    from kombu import Connection
    from kombu.exceptions import OperationalError

    proxy.blackhole()
    conn = Connection(proxy.url("redis", "/0"), connect_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(OperationalError):
        conn.ensure_connection(max_retries=0)
    assert time.monotonic() - start < 2
    conn.close()


@pytest.mark.parametrize("how", ["close", "cancel"])
def test_acks_written_before_a_cut_are_not_lost_on_close(
        proxies: Any, connect: Any, names: Any, raw: Any, redis_url: str, how: str) -> None:
    """An ack written (never confirmed) before the connection was cut is sent
    again by a clean close or cancel, not dropped (redelivered later)."""
    proxy = proxies()
    db = "/" + redis_url.rsplit("/", 1)[1]
    prefix = connect.prefix
    queue = Queue(names("q"))
    Producer(connect(**OPTIONS)).publish("m", routing_key=queue.name, declare=[queue])
    conn = connect(proxy.url("redis", db), **OPTIONS)
    got: list[Any] = []

    def on_message(body: Any, message: Any) -> None:
        got.append(body)
        proxy.blackhole()  # the ack is written, but never reaches Redis
        message.ack()

    consumer = Consumer(conn, [queue], callbacks=[on_message], prefetch_count=1)
    consumer.consume()
    conn.drain_events(timeout=5)
    assert got == ["m"]
    assert raw.hlen(prefix + "unacked") == 1  # not applied: blackholed
    proxy.cut_all()
    proxy.forward()  # Redis is reachable again, the connection is dead
    if how == "cancel":
        consumer.cancel()
    else:
        conn.close()
    assert raw.hlen(prefix + "unacked") == 0
    assert raw.zcard(prefix + "unacked_index") == 0
    assert raw.llen(prefix + queue.name) == 0  # nothing to redeliver
    conn.close()


def test_a_fanout_only_consumer_gets_its_waiter_back(connect: Any, names: Any,
                                                     raw: Any) -> None:
    """The PUB/SUB connection of a channel consuming only fanout queues is
    killed; later broadcasts arrive again (after at most one error)."""
    from kombu import Exchange

    conn = connect()
    exchange = Exchange(names("fx"), "fanout")
    queue = Queue(names("fq"), exchange, auto_delete=True)
    producer = Producer(connect(), exchange=exchange)
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]):
        waiter = conn.default_channel.waiter
        deadline = time.monotonic() + 10
        while not got:  # subscribed once a broadcast arrives
            assert time.monotonic() < deadline, "no broadcast arrived before the kill"
            producer.publish("before")
            try:
                conn.drain_events(timeout=0.3)
            except socket.timeout:
                pass
        raw.execute_command("CLIENT", "KILL", "ID", waiter.client_id)
        got.clear()
        errors: list[BaseException] = []
        deadline = time.monotonic() + 10
        while "after" not in got:
            assert time.monotonic() < deadline, f"no broadcast after the kill ({errors})"
            producer.publish("after")
            try:
                conn.drain_events(timeout=0.3)
            except socket.timeout:
                pass
            except conn.connection_errors as exc:
                errors.append(exc)
        assert len(errors) <= 1
        assert conn.default_channel.waiter.connected
