"""kombu-pyamqp under kombu.asynchronous.Hub, driven the way Celery's worker drives it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from kombu import Connection, Queue
from kombu.asynchronous import Hub, set_event_loop

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub()
    yield h
    h.close()
    set_event_loop(None)


def run_until(hub: Hub, predicate: Callable[[], object], timeout: float = 10.0) -> None:
    loop = hub.create_loop()
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the hub did not get there in time"
        try:
            next(loop)
        except StopIteration:  # pragma: no cover - the poller was replaced
            loop = hub.create_loop()


def enable_heartbeats(hub: Hub, conn: Connection, rate: float = 2.0) -> list[Any]:
    """Celery's ``_enable_amqheartbeats``: a repeating timer entry calling heartbeat_check."""
    errors: list[Any] = [None]
    interval = conn.get_heartbeat_interval()
    assert interval and conn.supports_heartbeats

    def tick(rate: float) -> None:
        try:
            conn.heartbeat_check(rate)
        except Exception as exc:  # noqa: BLE001 - recorded, as Celery does
            errors[0] = exc

    hub.call_repeatedly(interval / rate, tick, rate)
    return errors


def queued(amqp_url: str, name: str) -> int:
    with Connection(amqp_url) as other:
        _, count, _ = other.default_channel.queue_declare(name, passive=True)
        return int(count)


def test_publish_consume_and_ack_through_the_hub(
        hub: Hub, amqp_url: str, names: Callable[[str], str]) -> None:
    queue = Queue(names("q"), durable=False)
    conn = Connection(amqp_url)
    try:
        conn.connect()
        got: list[Any] = []

        def on_message(body: Any, message: Any) -> None:
            got.append(body)
            # Celery acknowledges through the hub: message.ack runs next turn.
            hub.call_soon(message.ack)

        consumer = conn.Consumer(queue, callbacks=[on_message], prefetch_count=5)
        consumer.consume()
        conn.transport.register_with_event_loop(conn.connection, hub)
        sock = conn.connection.sock
        assert sock.fileno() in hub.readers

        producer = conn.Producer()
        for i in range(20):
            producer.publish({"n": i}, routing_key=queue.name)
        # Prefetch 5: all 20 arrive only if the acks reach the broker.
        run_until(hub, lambda: len(got) == 20)
        assert [m["n"] for m in got] == list(range(20))
        run_until(hub, lambda: not hub._ready)  # the last acks are written
        consumer.cancel()
    finally:
        conn.close()
    assert queued(amqp_url, queue.name) == 0  # acked, not requeued on close


def test_hub_reader_handles_bursts_buffered_in_one_read(
        hub: Hub, amqp_url: str, names: Callable[[str], str]) -> None:
    """Many deliveries arrive in one recv(); the reader re-queues itself until they are all handled."""
    queue = Queue(names("q"), durable=False)
    with Connection(amqp_url) as pub:
        producer = pub.Producer()
        for i in range(200):
            producer.publish(i, routing_key=queue.name, declare=[queue])
    conn = Connection(amqp_url)
    try:
        got: list[int] = []

        def on_message(body: Any, message: Any) -> None:
            got.append(body)
            message.ack()

        consumer = conn.Consumer(queue, callbacks=[on_message], prefetch_count=200)
        consumer.consume()
        conn.transport.register_with_event_loop(conn.connection, hub)
        run_until(hub, lambda: len(got) == 200)
        assert got == list(range(200))
        assert len(hub.on_tick) == 1  # the transport's check for read-ahead frames
        consumer.cancel()
    finally:
        conn.close()
    assert queued(amqp_url, queue.name) == 0
    for tick in list(hub.on_tick):
        tick()
    assert not hub.on_tick  # removed itself once the connection closed


def test_heartbeats_through_call_repeatedly_keep_an_idle_connection(
        hub: Hub, amqp_url: str, names: Callable[[str], str]) -> None:
    queue = Queue(names("q"), durable=False)
    conn = Connection(amqp_url, heartbeat=1)
    try:
        conn.connect()
        assert conn.get_heartbeat_interval() == 1
        got: list[Any] = []
        consumer = conn.Consumer(queue, callbacks=[lambda body, message: (got.append(body),
                                                                          message.ack())])
        consumer.consume()
        conn.transport.register_with_event_loop(conn.connection, hub)
        errors = enable_heartbeats(hub, conn)
        sent_before = conn.connection.last_heartbeat_sent
        # Idle for three heartbeat intervals: without heartbeats from the
        # timer, RabbitMQ would close the connection after two.
        idle_until = time.monotonic() + 3.5
        run_until(hub, lambda: time.monotonic() > idle_until or errors[0] is not None)
        assert errors == [None]
        assert conn.connection.last_heartbeat_sent > sent_before
        assert conn.connection.connected
        conn.Producer().publish("still alive", routing_key=queue.name)
        run_until(hub, lambda: got)
        assert got == ["still alive"]
        consumer.cancel()
    finally:
        conn.close()


def test_heartbeat_check_reports_a_dead_broker_through_the_timer(
        hub: Hub, fault_proxy: Callable[[], Any], names: Callable[[str], str]) -> None:
    proxy = fault_proxy()
    conn = Connection(proxy.url("amqp", "//"), heartbeat=1)
    try:
        conn.connect()
        conn.transport.register_with_event_loop(conn.connection, hub)
        errors = enable_heartbeats(hub, conn)
        proxy.stall()  # the broker goes silent: no frames, no heartbeats
        run_until(hub, lambda: errors[0] is not None)
        assert isinstance(errors[0], tuple(conn.recoverable_connection_errors))
    finally:
        conn.collect()


def test_a_broken_connection_leaves_the_loop_and_reset_cleans_up(
        hub: Hub, fault_proxy: Callable[[], Any], names: Callable[[str], str]) -> None:
    """A cut socket raises out of the loop (Celery then resets the hub and reconnects)."""
    proxy = fault_proxy()
    conn = Connection(proxy.url("amqp", "//"))
    try:
        conn.connect()
        queue = Queue(names("q"), durable=False)
        consumer = conn.Consumer(queue, callbacks=[lambda body, message: None])
        consumer.consume()
        conn.transport.register_with_event_loop(conn.connection, hub)
        hub.propagate_errors = tuple(conn.connection_errors)
        proxy.cut_all()
        with pytest.raises(tuple(conn.recoverable_connection_errors)):
            run_until(hub, lambda: False)
        hub.reset()
        assert not hub.readers
    finally:
        conn.collect()
