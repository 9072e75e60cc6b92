"""kombu-redis under the event loop (``kombu.asynchronous.Hub``), on a real Redis.

A Connection is registered with a real Hub as Celery's worker does
(``transport.register_with_event_loop``), and the hub is driven with
``hub.run_once()`` until a condition holds or a deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import MethodType
from typing import Any, Callable

import pytest
from kombu import Consumer, Exchange, Producer, Queue
from kombu.asynchronous import Hub

pytestmark = pytest.mark.redis

#: The Redis database of these tests.
HUB_DB = 1
FAST = {"visibility_timeout": 1, "unacked_restore_interval": 0.2}


@pytest.fixture
def redis_url() -> str:
    return f"redis://127.0.0.1:6379/{HUB_DB}"


@pytest.fixture
def hub() -> Iterator[Hub]:
    loop = Hub()
    yield loop
    loop.close()


def run_until(hub: Hub, done: Callable[[], bool], timeout: float = 15.0,
              errors: list[BaseException] | None = None,
              on_error: Callable[[BaseException], None] | None = None) -> None:
    """Run turns of ``hub`` until ``done()``; fail after ``timeout`` seconds.

    With ``errors``, connection errors raised out of the loop are collected
    (then ``on_error(exc)``) and the loop goes on, as an application would.
    """
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the hub did not get there in time"
        try:
            hub.run_once()
        except Exception as exc:
            if errors is None:
                raise
            errors.append(exc)
            if on_error is not None:
                on_error(exc)


def live_timers(hub: Hub) -> int:
    """Timer entries of ``hub`` that were not cancelled."""
    return sum(1 for scheduled in hub.timer.queue if not scheduled.entry.canceled)


def run_for(hub: Hub, seconds: float) -> None:
    """Run turns of ``hub`` for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        hub.run_once()


def test_implements_asynchronous(connect: Any) -> None:
    conn = connect()
    assert conn.transport.implements.asynchronous is True
    assert conn.is_evented


def test_several_queues_prefetch_and_acks(hub: Hub, connect: Any, names: Any, raw: Any) -> None:
    """Three queues consumed under the hub: never more than the prefetch count
    held unacked; acks given outside callbacks (on the loop's thread) reach Redis."""
    conn, pub = connect(), connect()
    queues = [Queue(names("q")) for _ in range(3)]
    producer = Producer(pub)
    for q in queues:
        q(pub.default_channel).declare()
        for i in range(20):
            producer.publish({"q": q.name, "i": i}, routing_key=q.name)
    got: list[Any] = []

    def on_message(body: Any, message: Any) -> None:
        got.append(message)

    conn.transport.register_with_event_loop(conn.connection, hub)
    channel = conn.default_channel
    with Consumer(conn, queues, callbacks=[on_message], prefetch_count=7):
        acked = 0
        while acked < 60:
            run_until(hub, lambda a=acked: len(got) - a == min(7, 60 - a))
            run_for(hub, 0.1)  # more turns: the window is full, nothing more comes
            assert len(got) - acked == min(7, 60 - acked)
            assert len(channel.held_tags()) <= 7
            for message in got[acked:]:
                message.ack()
            acked = len(got)
        run_for(hub, 0.1)  # the acks are written on the next turn
    bodies = {(m.payload["q"], m.payload["i"]) for m in got}
    assert bodies == {(q.name, i) for q in queues for i in range(20)}
    assert raw.hlen(connect.prefix + "unacked") == 0
    assert raw.zcard(connect.prefix + "unacked_index") == 0
    assert all(raw.llen(connect.prefix + q.name) == 0 for q in queues)


def test_single_acks_refill_a_window_held_back(hub: Hub, connect: Any, names: Any,
                                               raw: Any) -> None:
    """Acks given one at a time on the loop's thread (as Celery's pool does):
    a fetch may wait for half the window to open, but never longer than a
    moment, never beyond the prefetch count, and the acks that waited for it
    reach Redis while the consumer stays open."""
    conn, pub = connect(), connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    producer = Producer(pub)
    for i in range(30):
        producer.publish({"i": i}, routing_key=queue.name)
    got: list[Any] = []
    conn.transport.register_with_event_loop(conn.connection, hub)
    channel = conn.default_channel
    with Consumer(conn, [queue], callbacks=[lambda body, message: got.append(message)],
                  prefetch_count=8):
        acked = 0
        while acked < 30:
            # One ack frees one slot: the channel fills the window again (a
            # held-back fetch runs on its timer even if nothing else happens).
            run_until(hub, lambda a=acked: len(got) - a == min(8, 30 - a))
            assert len(channel.held_tags()) <= 8
            got[acked].ack()
            acked += 1
        run_until(hub, lambda: raw.hlen(connect.prefix + "unacked") == 0)
        assert raw.zcard(connect.prefix + "unacked_index") == 0
    assert sorted(m.payload["i"] for m in got) == list(range(30))
    assert raw.llen(connect.prefix + queue.name) == 0


def test_acks_in_callbacks_and_readers(hub: Hub, connect: Any, names: Any, raw: Any) -> None:
    """Messages published while the hub waits wake it through the waiter socket."""
    conn, pub = connect(), connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    got: list[int] = []

    def on_message(body: Any, message: Any) -> None:
        got.append(body)
        message.ack()

    conn.transport.register_with_event_loop(conn.connection, hub)
    with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10):
        run_for(hub, 0.2)  # registered and armed; the queue is empty
        assert got == []
        assert hub.readers, "the waiter socket is a reader of the hub"
        producer = Producer(pub)
        for i in range(50):
            producer.publish(i, routing_key=queue.name)
            if i % 10 == 9:
                run_until(hub, lambda n=i + 1: len(got) == n)
    assert got == list(range(50))
    assert raw.hlen(connect.prefix + "unacked") == 0


def test_fanout(hub: Hub, connect: Any, names: Any) -> None:
    """Two connections under one hub each receive every fanout message."""
    exchange = Exchange(names("fx"), type="fanout")
    conns = [connect(), connect()]
    pub = connect()
    got: list[list[int]] = [[], []]
    consumers = []
    for k, conn in enumerate(conns):
        queue = Queue(names("fq"), exchange=exchange, auto_delete=True)
        conn.transport.register_with_event_loop(conn.connection, hub)
        consumer = Consumer(conn, [queue], callbacks=[
            lambda body, message, k=k: (got[k].append(body), message.ack())])
        consumer.consume()
        consumers.append(consumer)
    run_for(hub, 0.1)
    producer = Producer(pub, exchange=exchange)
    for i in range(20):
        producer.publish(i)
    run_until(hub, lambda: len(got[0]) == 20 and len(got[1]) == 20)
    assert got == [list(range(20)), list(range(20))]
    for consumer in consumers:
        consumer.cancel()


def test_replaced_can_consume(hub: Hub, connect: Any, names: Any, raw: Any) -> None:
    """A ``can_consume`` replaced on the QoS instance (Celery's
    ``worker_disable_prefetch``) gates every fetch, one message at a time."""
    conn, pub = connect(), connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    producer = Producer(pub)
    for i in range(6):
        producer.publish(i, routing_key=queue.name)
    allowed = [False]
    got: list[Any] = []
    buffered: list[int] = []

    channel = conn.default_channel
    qos = channel.qos
    original = qos.can_consume

    def can_consume(self: Any) -> bool:
        reserved = sum(1 for m in got if not m.acknowledged)
        return allowed[0] and reserved < 1 and original()

    qos.can_consume = MethodType(can_consume, qos)

    def on_message(body: Any, message: Any) -> None:
        buffered.append(len(channel.fetcher.buffer))
        got.append(message)

    conn.transport.register_with_event_loop(conn.connection, hub)
    with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10):
        run_for(hub, 0.3)
        assert got == []
        assert raw.llen(connect.prefix + queue.name) == 6, "fetched while can_consume was False"
        allowed[0] = True
        for n in range(1, 7):
            run_until(hub, lambda n=n: len(got) == n)
            run_for(hub, 0.05)
            assert len(got) == n, "delivered while the replaced can_consume said no"
            assert raw.llen(connect.prefix + queue.name) == 6 - n
            got[-1].ack()
    assert [m.payload for m in got] == list(range(6))
    assert buffered == [0] * 6, "fetched more than the one message can_consume allowed"


def test_connection_cut_self_recovers(hub: Hub, proxies: Any, connect: Any, names: Any,
                                      raw: Any, check_deliveries: Any) -> None:
    """The consumer's connections are cut while messages flow; the hub raises the
    connection error, then (run again) reconnects on its own: nothing is lost."""
    proxy = proxies()
    conn = connect(url=proxy.url("redis", f"/{HUB_DB}"), **FAST)
    pub = connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    producer = Producer(pub)
    n = 300
    seen: list[tuple[int, str, bool, str]] = []
    life = ["c0"]
    lost: set[str] = set()

    def on_message(body: Any, message: Any) -> None:
        message.ack()
        seen.append((body, message.delivery_tag,
                     bool(message.delivery_info.get("redelivered")), life[0]))

    def on_error(exc: BaseException) -> None:
        assert isinstance(exc, conn.connection_errors), repr(exc)
        lost.add(life[0])
        life[0] = f"c{len(lost)}"

    errors: list[BaseException] = []
    conn.transport.register_with_event_loop(conn.connection, hub)
    with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=20):
        for i in range(n):
            producer.publish(i, routing_key=queue.name)
            if i % 100 == 99:
                run_until(hub, lambda i=i: len({b for b, *_ in seen}) >= i - 50, errors=errors,
                          on_error=on_error)
                proxy.cut_all()
        run_until(hub, lambda: {b for b, *_ in seen} == set(range(n)), timeout=30,
                  errors=errors, on_error=on_error)
    assert errors, "no cut reached the consumer"
    check_deliveries(seen, set(range(n)), lost)
    run_for(hub, 0.1)
    assert raw.llen(connect.prefix + queue.name) == 0


def test_idle_while_window_closed_and_cut(hub: Hub, proxies: Any, connect: Any, names: Any,
                                          raw: Any) -> None:
    """Prefetch window full and the connections cut: the hub waits (queues no
    work for the next turn) until acks open the window; then it reconnects."""
    proxy = proxies()
    conn = connect(url=proxy.url("redis", f"/{HUB_DB}"))
    pub = connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    producer = Producer(pub)
    for i in range(5):
        producer.publish(i, routing_key=queue.name)
    got: list[Any] = []
    errors: list[BaseException] = []
    conn.transport.register_with_event_loop(conn.connection, hub)
    driver = conn.transport.hub
    with Consumer(conn, [queue], callbacks=[lambda body, message: got.append(message)],
                  prefetch_count=2):
        run_until(hub, lambda: len(got) == 2)
        proxy.cut_all()
        for _ in range(20):
            try:
                hub.run_once()
            except conn.connection_errors as exc:
                errors.append(exc)
            assert not driver.busy, "the hub spins while nothing can be fetched"
        assert len(got) == 2
        for message in got:
            message.ack()
        run_until(hub, lambda: len(got) == 4, errors=errors)
        for message in got[2:]:
            message.ack()
        run_until(hub, lambda: len(got) == 5, errors=errors)
        got[4].ack()
        run_until(hub, lambda: raw.hlen(connect.prefix + "unacked") == 0, errors=errors)
    assert sorted(m.payload for m in got) == list(range(5))


def test_reset_and_register_again(hub: Hub, proxies: Any, connect: Any, names: Any,
                                  raw: Any, check_deliveries: Any) -> None:
    """As Celery does after a connection error: ``hub.reset()``, then the
    transport registers again; timers of the old registration are cancelled."""
    proxy = proxies()
    conn = connect(url=proxy.url("redis", f"/{HUB_DB}"), **FAST)
    pub = connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    producer = Producer(pub)
    seen: list[tuple[int, str, bool, str]] = []
    life = ["c0"]
    lost: set[str] = set()

    def on_message(body: Any, message: Any) -> None:
        message.ack()
        seen.append((body, message.delivery_tag,
                     bool(message.delivery_info.get("redelivered")), life[0]))

    entries_before = live_timers(hub)
    conn.transport.register_with_event_loop(conn.connection, hub)
    registered = live_timers(hub)
    assert registered > entries_before, "housekeeping runs on the hub's timer"

    def on_error(exc: BaseException) -> None:
        assert isinstance(exc, conn.connection_errors), repr(exc)
        lost.add(life[0])
        life[0] = f"c{len(lost)}"
        hub.reset()
        conn.transport.register_with_event_loop(conn.connection, hub)

    errors: list[BaseException] = []
    with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10):
        for round_ in range(3):
            for i in range(round_ * 100, round_ * 100 + 100):
                producer.publish(i, routing_key=queue.name)
            run_until(hub, lambda r=round_: len({b for b, *_ in seen}) >= r * 100 + 50,
                      errors=errors, on_error=on_error)
            proxy.cut_all()
        run_until(hub, lambda: {b for b, *_ in seen} == set(range(300)), timeout=30,
                  errors=errors, on_error=on_error)
        # A plain reset (no error) keeps consuming too: readers come back next turn.
        hub.reset()
        conn.transport.register_with_event_loop(conn.connection, hub)
        producer.publish(300, routing_key=queue.name)
        run_until(hub, lambda: any(b == 300 for b, *_ in seen))
    assert errors
    assert live_timers(hub) == registered, "re-registering added timers"
    check_deliveries(seen, set(range(301)), lost)


def test_close_restores_held(hub: Hub, connect: Any, names: Any, raw: Any) -> None:
    """Closing a connection registered with the hub puts back what it held:
    delivered and not acked, and fetched and not delivered."""
    conn, pub = connect(), connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    producer = Producer(pub)
    for i in range(30):
        producer.publish(i, routing_key=queue.name)
    got: list[Any] = []
    conn.transport.register_with_event_loop(conn.connection, hub)
    consumer = Consumer(conn, [queue], callbacks=[lambda body, message: got.append(message)],
                        prefetch_count=10)
    consumer.consume()
    run_until(hub, lambda: len(got) == 10)
    got[0].ack()
    run_for(hub, 0.05)
    assert raw.llen(connect.prefix + queue.name) <= 20
    conn.close()
    assert not hub.readers, "closing removed the readers"
    assert raw.llen(connect.prefix + queue.name) == 29
    assert raw.hlen(connect.prefix + "unacked") == 0
    run_for(hub, 0.1)  # the loop goes on without the closed connection


def test_dead_consumer_restored_by_hub_timer(hub: Hub, connect: Any, names: Any,
                                             raw: Any) -> None:
    """A consumer that stopped refreshing (as a killed one) loses its messages
    to the consumer under the hub after visibility_timeout, flagged."""
    dead, conn, pub = connect(**FAST), connect(**FAST), connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    producer = Producer(pub)
    for i in range(3):
        producer.publish(i, routing_key=queue.name)
    held: list[Any] = []
    with Consumer(dead, [queue], callbacks=[lambda body, message: held.append(message)],
                  prefetch_count=3):
        deadline = time.monotonic() + 10
        while len(held) < 3:
            assert time.monotonic() < deadline
            try:
                dead.drain_events(timeout=0.5)
            except TimeoutError:
                pass
        dead.transport.refresher.stop()
        dead.transport.consuming.clear()  # it neither fetches nor refreshes any more
        got: list[Any] = []

        def on_message(body: Any, message: Any) -> None:
            got.append((body, bool(message.delivery_info.get("redelivered"))))
            message.ack()

        conn.transport.register_with_event_loop(conn.connection, hub)
        with Consumer(conn, [queue], callbacks=[on_message]):
            run_until(hub, lambda: len(got) == 3)
    assert sorted(got) == [(0, True), (1, True), (2, True)]


@pytest.mark.timeout(120)
def test_2000_messages_exact(hub: Hub, connect: Any, names: Any, raw: Any) -> None:
    """2000 messages on two queues under the hub: every one delivered once
    (a duplicate only if redelivered), every ack applied."""
    conn, pub = connect(), connect()
    queues = [Queue(names("q")), Queue(names("q"))]
    for q in queues:
        q(pub.default_channel).declare()
    producer = Producer(pub)
    n = 2000
    for i in range(n):
        producer.publish(i, routing_key=queues[i % 2].name)
    seen: list[tuple[int, bool]] = []

    def on_message(body: Any, message: Any) -> None:
        seen.append((body, bool(message.delivery_info.get("redelivered"))))
        message.ack()

    conn.transport.register_with_event_loop(conn.connection, hub)
    with Consumer(conn, queues, callbacks=[on_message], prefetch_count=50):
        run_until(hub, lambda: len({b for b, _ in seen}) == n, timeout=60)
        run_for(hub, 0.1)
    bodies = [b for b, _ in seen]
    assert set(bodies) == set(range(n))
    duplicates = [(b, r) for b, r in seen if bodies.count(b) > 1] if len(bodies) > n else []
    assert all(r for _, r in duplicates), f"delivered twice without the flag: {duplicates[:10]}"
    assert raw.hlen(connect.prefix + "unacked") == 0
    assert all(raw.llen(connect.prefix + q.name) == 0 for q in queues)


def test_unregister_then_blocking(hub: Hub, connect: Any, names: Any) -> None:
    """After ``unregister_from_event_loop`` the blocking ``drain_events`` path consumes."""
    conn, pub = connect(), connect()
    queue = Queue(names("q"))
    queue(pub.default_channel).declare()
    got: list[int] = []
    conn.transport.register_with_event_loop(conn.connection, hub)
    with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]):
        Producer(pub).publish(1, routing_key=queue.name)
        run_until(hub, lambda: got == [1])
        conn.transport.unregister_from_event_loop(conn.connection, hub)
        assert not hub.readers
        Producer(pub).publish(2, routing_key=queue.name)
        conn.drain_events(timeout=5)
    assert got == [1, 2]
