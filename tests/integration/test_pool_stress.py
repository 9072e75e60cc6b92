"""Connection and producer pools under 64 threads against a real RabbitMQ.

What must hold: never more than ``limit`` resources in use, no deadlock
(every thread finishes), every ``acquire(block=True, timeout=...)`` returns
or raises within about its timeout, and no socket outlives
``force_close_all()`` / ``pools.reset()``.  Sockets are counted from
``/proc/self`` (this process only), so other users of the broker do not
matter.  Last, a pool recovers when its broker goes away and comes back.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.faultproxy import FaultProxy
from helpers.sockets import baseline_sockets, established_to, open_sockets
from kombu import Connection, Queue, pools
from kombu.exceptions import LimitExceeded

pytest.importorskip("kombu_pyamqp", reason="these tests need the kombu-pyamqp transport")

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists("/proc/self/net/tcp"),
                       reason="counting sockets reads /proc (Linux only)"),
]

BROKER = ("127.0.0.1", 5672)
THREADS = 64
RUN_SECONDS = 3.0
ACQUIRE_TIMEOUT = 0.5
#: Allowed lateness of a timed acquire: 64 threads share 2 noisy cores.
SCHEDULING_SLACK = 2.0
#: How long every thread gets to finish after the run (a deadlock fails here).
JOIN_SECONDS = 60.0


class Stress:
    """Runs ``body(stress)`` in many threads for a while and keeps the score."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.in_use = 0
        self.peak = 0
        self.acquired = 0
        self.timeouts = 0
        self.slowest_acquire = 0.0
        self.errors: list[BaseException] = []
        self.stop_at = 0.0

    def timed_acquire(self, pool: Any) -> Any:
        """``pool.acquire(block=True, timeout=...)``; None when it timed out."""
        started = time.monotonic()
        try:
            resource = pool.acquire(block=True, timeout=ACQUIRE_TIMEOUT)
        except LimitExceeded as exc:
            assert isinstance(exc, TimeoutError)
            resource = None
        elapsed = time.monotonic() - started
        with self.lock:
            self.slowest_acquire = max(self.slowest_acquire, elapsed)
            if resource is None:
                self.timeouts += 1
            else:
                self.acquired += 1
                self.in_use += 1
                self.peak = max(self.peak, self.in_use)
        return resource

    def returning(self) -> None:
        """Call just before a resource goes back (so the count never overshoots)."""
        with self.lock:
            self.in_use -= 1

    def run(self, body: Callable[[Stress], None], threads: int = THREADS) -> None:
        def loop() -> None:
            try:
                while time.monotonic() < self.stop_at:
                    body(self)
            except BaseException as exc:  # noqa: BLE001  (reported by the test, not lost)
                with self.lock:
                    self.errors.append(exc)

        workers = [threading.Thread(target=loop, name=f"stress-{i}", daemon=True)
                   for i in range(threads)]
        self.stop_at = time.monotonic() + RUN_SECONDS
        for worker in workers:
            worker.start()
        deadline = self.stop_at + JOIN_SECONDS
        for worker in workers:
            worker.join(max(deadline - time.monotonic(), 0.1))
        stuck = [w.name for w in workers if w.is_alive()]
        assert not stuck, f"{len(stuck)} threads did not finish (deadlock?): {stuck[:5]}"

    def check(self) -> None:
        assert not self.errors, f"{len(self.errors)} errors, first: {self.errors[0]!r}"
        assert self.in_use == 0
        assert 0 < self.peak <= self.limit, f"{self.peak} in use with a limit of {self.limit}"
        assert self.acquired > THREADS, "the run should have made progress"
        assert self.slowest_acquire < ACQUIRE_TIMEOUT + SCHEDULING_SLACK, (
            f"an acquire with timeout={ACQUIRE_TIMEOUT} took {self.slowest_acquire:.2f}s")


def use_connection(connection: Connection) -> None:
    """Work that needs the broker: a round trip on the default channel."""
    connection.default_channel.basic_qos(0, random.randint(1, 50), False)
    time.sleep(random.random() * 0.002)


@pytest.fixture
def global_pools(amqp_url: str) -> Iterator[None]:
    """The global pools, emptied before and after, with a limit of 8."""
    previous = pools.get_limit()
    pools.reset()
    pools.set_limit(8)
    yield
    pools.reset()
    pools.set_limit(previous)


@pytest.fixture
def queue(amqp_url: str, unique: Callable[..., str]) -> Iterator[Queue]:
    """A fresh queue on the broker, deleted afterwards."""
    q = Queue(unique("q"), durable=False, auto_delete=False)
    with Connection(amqp_url) as conn:
        q(conn.default_channel).declare()
        yield q
        q(conn.default_channel).delete()


def _connection_body(pool: Any) -> Callable[[Stress], None]:
    def body(stress: Stress) -> None:
        connection = stress.timed_acquire(pool)
        if connection is None:
            return
        try:
            use_connection(connection)
        finally:
            stress.returning()
            connection.release()
    return body


def test_connection_pool_under_64_threads(amqp_url: str) -> None:
    port = BROKER[1]
    before, fds_before = established_to(port), baseline_sockets()
    pool = Connection(amqp_url).Pool(limit=8)
    stress = Stress(limit=8)
    stress.run(_connection_body(pool))
    stress.check()
    assert stress.peak == 8, "64 threads on 8 connections should have used them all"
    during = established_to(port) - before
    assert 1 <= during <= 8
    pool.force_close_all()
    assert established_to(port) == before
    assert open_sockets() == fds_before
    with pytest.raises(RuntimeError):
        pool.acquire()


def test_global_connection_pool_under_64_threads(amqp_url: str, global_pools: None) -> None:
    port = BROKER[1]
    before, fds_before = established_to(port), baseline_sockets()
    conn = Connection(amqp_url)
    pool = pools.connections[conn]
    assert pool is pools.connections[Connection(amqp_url)] is pools.connections[amqp_url]
    assert pool.limit == 8
    stress = Stress(limit=8)
    stress.run(_connection_body(pool))
    stress.check()
    assert 1 <= established_to(port) - before <= 8
    pools.reset()
    assert established_to(port) == before
    assert open_sockets() == fds_before
    assert pools.connections[conn] is not pool  # a fresh pool after reset


def test_global_producer_pool_under_64_threads(amqp_url: str, global_pools: None,
                                               queue: Queue) -> None:
    port = BROKER[1]
    before, fds_before = established_to(port), baseline_sockets()
    conn = Connection(amqp_url, transport_options={"confirm_publish": True})
    pool = pools.producers[conn]
    published = [0]

    def body(stress: Stress) -> None:
        producer = stress.timed_acquire(pool)
        if producer is None:
            return
        try:
            producer.publish({"t": threading.current_thread().name}, routing_key=queue.name)
            with stress.lock:
                published[0] += 1
        finally:
            stress.returning()
            producer.release()

    stress = Stress(limit=8)
    stress.run(body)
    stress.check()
    assert 1 <= established_to(port) - before <= 8
    # Confirmed publishes: every one is in the queue, none twice.
    with Connection(amqp_url) as direct:
        count = queue(direct.default_channel).queue_declare(passive=True).message_count
        assert count == published[0]
    pools.reset()
    assert established_to(port) == before
    assert open_sockets() == fds_before


def test_waiting_threads_get_their_turn(amqp_url: str) -> None:
    pool = Connection(amqp_url).Pool(limit=8)
    turns: dict[str, int] = {}
    stress = Stress(limit=8)

    def body(stress: Stress) -> None:
        connection = stress.timed_acquire(pool)
        if connection is None:
            return
        try:
            use_connection(connection)
            if time.monotonic() < stress.stop_at:
                name = threading.current_thread().name
                with stress.lock:
                    turns[name] = turns.get(name, 0) + 1
        finally:
            stress.returning()
            connection.release()

    try:
        stress.run(body)
    finally:
        pool.force_close_all()
    stress.check()
    # thousands of turns in all: a fair pool gives every thread a few
    assert len(turns) == THREADS and min(turns.values()) >= 3, sorted(turns.values())


def test_nonblocking_acquire_raises_limit_exceeded_at_once(amqp_url: str) -> None:
    pool = Connection(amqp_url).Pool(limit=2)
    held = [pool.acquire(), pool.acquire()]
    try:
        started = time.monotonic()
        with pytest.raises(pool.LimitExceeded):
            pool.acquire(block=False)
        with pytest.raises(pool.LimitExceeded) as info:
            pool.acquire(block=True, timeout=0.3)
        elapsed = time.monotonic() - started
        assert isinstance(info.value, TimeoutError)
        assert 0.25 <= elapsed < 0.3 + SCHEDULING_SLACK
        # a waiter gets the connection another thread gives back
        releaser = threading.Timer(0.2, held.pop().release)
        releaser.start()
        got = pool.acquire(block=True, timeout=10)
        releaser.join(5)
        held.append(got)
    finally:
        for connection in held:
            connection.release()
        pool.force_close_all()


def test_pool_recovers_after_the_broker_restarts(amqp_url: str, queue: Queue) -> None:
    limit = 4
    with FaultProxy(BROKER) as proxy:
        conn = Connection(proxy.url("amqp", "//"), transport_options={
            "max_retries": 50, "interval_start": 0.1, "interval_step": 0.1,
            "interval_max": 0.3})
        pool = conn.Pool(limit=limit)
        held = [pool.acquire(block=True, timeout=5) for _ in range(limit)]
        for connection in held:
            use_connection(connection)
        for connection in held:
            connection.release()
        assert established_to(proxy.port) == limit
        fds_before = baseline_sockets()  # ours and the proxy's

        # The broker "restarts": every connection is reset and, for a second,
        # new ones are refused.
        proxy.refuse()
        proxy.cut_all()
        back = threading.Timer(1.0, proxy.forward)
        back.start()
        try:
            held = [pool.acquire(block=True, timeout=5) for _ in range(limit)]
            # Half of them through ensure(): the failed call is retried after
            # a reconnect.
            for connection in held[:2]:
                def check(c: Connection = connection) -> Any:
                    return queue(c.default_channel).queue_declare(passive=True)

                ensured = connection.ensure(connection, check, max_retries=50,
                                            interval_start=0.1, interval_max=0.3)
                assert ensured().queue == queue.name
            # The other half notice the loss, then default_channel reconnects
            # with the policy of transport_options.
            for connection in held[2:]:
                with pytest.raises(connection.recoverable_connection_errors):
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        try:
                            connection.drain_events(timeout=0.2)
                        except socket.timeout:
                            pass
                assert not connection.connected
                queue(connection.default_channel).queue_declare(passive=True)
                assert connection.connected
        finally:
            back.cancel()
            back.join(5)
        assert proxy.connections_accepted == 2 * limit
        # Only the new connections are open: the dead ones were freed.
        assert established_to(proxy.port) == limit
        assert open_sockets() == fds_before
        for connection in held:
            connection.release()
        # The recovered connections are handed out again and work.
        with pool.acquire(block=True, timeout=5) as connection:
            use_connection(connection)
        assert proxy.connections_accepted == 2 * limit
        pool.force_close_all()
        assert established_to(proxy.port) == 0
