"""kombu.common: maybe_declare, eventloop, replies, Broadcast, QoS, oids."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any
from uuid import UUID

import pytest
from helpers import unique_name as unique
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.common import (
    PREFETCH_COUNT_MAX,
    Broadcast,
    QoS,
    collect_replies,
    declaration_cached,
    drain_consumer,
    eventloop,
    generate_oid,
    ignore_errors,
    insured,
    itermessages,
    maybe_declare,
    oid_from,
    send_reply,
    uuid,
)
from kombu.exceptions import ChannelError


def exchange_exists(channel: Any, name: str) -> bool:
    try:
        channel.exchange_declare(exchange=name, passive=True)
    except ChannelError:
        return False
    return True


# -- maybe_declare -----------------------------------------------------------

def test_maybe_declare_declares_once_per_connection(conn: Connection, channel: Any) -> None:
    ex = Exchange(unique("ex"), "topic")
    assert not declaration_cached(ex, channel)
    assert maybe_declare(ex, channel) is True
    assert exchange_exists(channel, ex.name)
    assert declaration_cached(ex, channel)
    assert declaration_cached(Exchange(ex.name, "topic"), channel)
    assert maybe_declare(ex, channel) is False
    assert maybe_declare(Exchange(ex.name, "topic"), channel) is False
    conn.declared_entities.clear()
    assert maybe_declare(ex, channel) is True


def test_maybe_declare_redeclares_entities_that_differ(channel: Any) -> None:
    ex = Exchange(unique("ex"))
    q1 = Queue(unique("q"), ex, "one")
    assert maybe_declare(q1, channel) is True
    q2 = Queue(q1.name, ex, "two")
    assert maybe_declare(q2, channel) is True  # kombu 5.x would skip the new binding
    Producer(channel, ex).publish("via-two", routing_key="two")
    assert q2(channel).get(no_ack=True).payload == "via-two"


def test_maybe_declare_does_not_cache_auto_delete(channel: Any) -> None:
    ex = Exchange(unique("ex"), auto_delete=True)
    assert maybe_declare(ex, channel) is True
    assert maybe_declare(ex, channel) is True
    assert not declaration_cached(ex, channel)


def test_maybe_declare_cache_is_a_snapshot(channel: Any) -> None:
    ex = Exchange(unique("ex"))
    maybe_declare(ex, channel)
    ex.type = "fanout"
    assert not declaration_cached(ex, channel)


def test_maybe_declare_uses_the_bound_channel(channel: Any) -> None:
    ex = Exchange(unique("ex"), channel=channel)
    assert maybe_declare(ex) is True
    assert exchange_exists(channel, ex.name)


def test_maybe_declare_unbound_without_channel_fails() -> None:
    with pytest.raises(ChannelError, match="not bound"):
        maybe_declare(Exchange(unique("ex")))


def test_maybe_declare_names_anonymous_queues(channel: Any) -> None:
    queue = Queue("", Exchange(unique("ex"), "fanout"))
    assert maybe_declare(queue, channel) is True
    assert queue.name


def test_maybe_declare_with_retry(conn: Connection, channel: Any) -> None:
    ex = Exchange(unique("ex"))
    assert maybe_declare(ex, channel, retry=True, max_retries=1) is True
    assert exchange_exists(channel, ex.name)
    assert maybe_declare(ex, channel, retry=True, max_retries=1) is False


def test_maybe_declare_with_retry_recovers_from_connection_errors(conn: Connection) -> None:
    channel = conn.default_channel
    ex = Exchange(unique("ex"))
    error = conn.connection_errors[0]
    attempts: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> None:
        attempts.append(1)
        raise error("connection lost (injected)")

    channel.exchange_declare = broken
    assert maybe_declare(ex, channel, retry=True, max_retries=2, interval_start=0,
                         interval_step=0) is True
    assert attempts == [1]
    assert exchange_exists(conn.default_channel, ex.name)


# -- eventloop and friends ---------------------------------------------------

def test_eventloop_with_limit(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    got: list[Any] = []
    with Consumer(channel, [queue], callbacks=[lambda body, m: got.append(body)],
                  no_ack=True):
        for i in range(5):
            Producer(channel).publish(i, routing_key=queue.name)
        rounds = list(eventloop(conn, limit=3, timeout=1))
    assert len(rounds) == 3
    assert got == [0, 1, 2]


def test_eventloop_timeout_propagates(conn: Connection, channel: Any) -> None:
    with Consumer(channel, [Queue(unique("q"))], callbacks=[lambda b, m: None]):
        start = time.monotonic()
        with pytest.raises(socket.timeout):
            next(eventloop(conn, timeout=0.1))
        assert time.monotonic() - start < 1.0


def test_eventloop_ignore_timeouts(conn: Connection, channel: Any) -> None:
    with Consumer(channel, [Queue(unique("q"))], callbacks=[lambda b, m: None]):
        start = time.monotonic()
        assert list(eventloop(conn, limit=3, timeout=0.05, ignore_timeouts=True)) == []
        elapsed = time.monotonic() - start
    assert 0.14 <= elapsed < 1.5


def test_eventloop_limit_zero_drains_nothing(conn: Connection) -> None:
    assert list(eventloop(conn, limit=0, timeout=0)) == []


def test_eventloop_without_limit_runs_until_stopped(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    got: list[Any] = []
    with Consumer(channel, [queue], callbacks=[lambda body, m: got.append(body)],
                  no_ack=True):
        for i in range(10):
            Producer(channel).publish(i, routing_key=queue.name)
        for n, _ in enumerate(eventloop(conn, timeout=1), 1):
            if n == 10:
                break
    assert got == list(range(10))


def test_itermessages(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    queue(channel).declare()
    for i in range(3):
        Producer(channel).publish({"i": i}, routing_key=queue.name)
    extra: list[Any] = []
    it = itermessages(conn, channel, queue, limit=3, timeout=1, no_ack=True,
                      callbacks=[lambda body, message: extra.append(body)])
    bodies = [body for body, message in it]
    assert bodies == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert extra == bodies


def test_itermessages_stops_when_idle(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    queue(channel).declare()
    start = time.monotonic()
    assert list(itermessages(conn, channel, queue, limit=2, timeout=0.05)) == []
    assert time.monotonic() - start < 1.0


def test_drain_consumer_cancels_at_the_end(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    consumer = Consumer(channel, [queue], no_ack=True)
    Producer(channel).publish("one", routing_key=queue.name)
    pairs = list(drain_consumer(consumer, limit=1, timeout=1))
    assert [body for body, _ in pairs] == ["one"]
    assert pairs[0][1].payload == "one"
    assert not consumer.consuming_from(queue)


# -- replies -----------------------------------------------------------------

def test_send_reply_and_collect_replies(conn: Connection, channel: Any) -> None:
    requests = Queue(unique("requests"))
    replies = Queue(unique("replies"), auto_delete=True)
    replies(channel).declare()
    producer = Producer(channel)
    producer.publish({"ask": 1}, routing_key=requests.name, declare=[requests],
                     reply_to=replies.name, correlation_id="cid-7", serializer="json")
    (request_body, request), = itermessages(conn, channel, requests, limit=1, timeout=1)
    assert request_body == {"ask": 1}
    send_reply(Exchange(""), request, {"answer": 2}, producer=producer, priority=1)
    request.ack()
    collected = []
    for body in collect_replies(conn, channel, replies, limit=1, timeout=1):
        collected.append(body)
    assert collected == [{"answer": 2}]
    # The reply queue is deleted once replies were received.
    with pytest.raises(ChannelError):
        channel.queue_declare(queue=replies.name, passive=True)


def test_send_reply_copies_request_details(conn: Connection, channel: Any) -> None:
    requests = Queue(unique("requests"), channel=channel)
    requests.declare()
    replies = Queue(unique("replies"), channel=channel)
    replies.declare()
    producer = Producer(channel)
    producer.publish("question", routing_key=requests.name, reply_to=replies.name,
                     correlation_id="cid-9")
    request = requests.get(no_ack=True)
    send_reply("", request, "answer", producer=producer, headers={"h": 1})
    reply = replies.get(no_ack=True)
    assert reply.payload == "answer"
    assert reply.properties["correlation_id"] == "cid-9"
    assert reply.content_type == "text/plain"
    assert reply.headers == {"h": 1}


def test_send_reply_needs_a_producer(channel: Any) -> None:
    with pytest.raises(TypeError, match="producer"):
        send_reply("", object(), "x")


def test_collect_replies_with_acks(conn: Connection, channel: Any) -> None:
    replies = Queue(unique("replies"))
    replies(channel).declare()
    Producer(channel).publish("r", routing_key=replies.name)
    assert list(collect_replies(conn, channel, replies, limit=1, timeout=1,
                                no_ack=False)) == ["r"]
    channel.basic_recover(requeue=True)
    assert channel.basic_get(replies.name) is None


# -- Broadcast ---------------------------------------------------------------

def test_broadcast_defaults() -> None:
    b = Broadcast("news")
    assert b.name.startswith("bcast.")
    assert b.queue == b.name
    assert b.alias == "news"
    assert b.auto_delete is True
    assert b.exchange == Exchange("news", type="fanout")
    assert Broadcast("news").name != b.name


def test_broadcast_queue_names() -> None:
    assert Broadcast("news", queue="mine").name == "mine"
    unique_name = Broadcast("news", queue="mine", unique=True).name
    assert unique_name.startswith("mine.") and len(unique_name) > len("mine.")
    assert Broadcast("news", alias="a").alias == "a"
    ex = Exchange("custom", "fanout")
    assert Broadcast("news", exchange=ex).exchange is ex


def test_broadcast_reaches_every_instance(conn: Connection, channel: Any) -> None:
    name = unique("bcast")
    got: list[tuple[str, Any]] = []
    consumers = []
    for label in ("a", "b"):
        consumer = Consumer(channel, [Broadcast(name)], no_ack=True,
                            callbacks=[lambda body, m, label=label: got.append((label, body))])
        consumer.consume()
        consumers.append(consumer)
    try:
        Producer(channel, Exchange(name, "fanout")).publish("hello all")
        for _ in range(2):
            conn.drain_events(timeout=1)
    finally:
        for consumer in consumers:
            consumer.cancel()
    assert sorted(got) == [("a", "hello all"), ("b", "hello all")]


def test_broadcast_copy_keeps_its_name() -> None:
    from copy import copy

    b = Broadcast("news")
    clone = copy(b)
    assert clone.name == b.name
    assert clone == b


# -- ignore_errors and insured -----------------------------------------------

def test_ignore_errors_function_form(conn: Connection) -> None:
    error = conn.connection_errors[0]

    def fails() -> None:
        raise error("gone (injected)")

    assert ignore_errors(conn, fails) is None
    assert ignore_errors(conn, lambda a, b=0: a + b, 1, b=2) == 3
    with pytest.raises(ValueError):
        ignore_errors(conn, int, "not a number")


def test_ignore_errors_context_form(conn: Connection) -> None:
    with ignore_errors(conn):
        raise conn.channel_errors[0]("channel gone (injected)")
    with pytest.raises(KeyError), ignore_errors(conn):
        raise KeyError("not a connection error")


def test_insured_calls_with_connection_and_channel(conn: Connection) -> None:
    queue = Queue(unique("q"))
    pool = conn.Pool(limit=1)
    try:
        def publish(body: Any, connection: Any, channel: Any) -> str:
            Producer(channel).publish(body, routing_key=queue.name, declare=[queue])
            return "done"

        assert insured(pool, publish, ("via-insured",), {}) == "done"
    finally:
        pool.force_close_all()
    assert queue(conn.default_channel).get(no_ack=True).payload == "via-insured"


# -- QoS ---------------------------------------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.values: list[int] = []

    def __call__(self, prefetch_count: int) -> None:
        self.values.append(prefetch_count)


def test_qos_update_applies_changes_once() -> None:
    recorder = Recorder()
    qos = QoS(recorder, 10)
    assert qos.value == 10 and qos.prev is None
    qos.update()
    qos.update()
    assert recorder.values == [10]
    assert qos.increment_eventually() == 11
    assert qos.increment_eventually(4) == 15
    assert qos.decrement_eventually(2) == 13
    assert recorder.values == [10]
    qos.update()
    assert recorder.values == [10, 13]


def test_qos_decrement_stops_at_one_and_zero_stays_unlimited() -> None:
    qos = QoS(Recorder(), 2)
    assert qos.decrement_eventually(5) == 1
    unlimited = QoS(Recorder(), None)
    assert unlimited.value == 0
    assert unlimited.increment_eventually() == 0
    assert unlimited.decrement_eventually() == 0


def test_qos_max_prefetch() -> None:
    qos = QoS(Recorder(), 5, max_prefetch=7)
    assert qos.increment_eventually(10) == 7
    assert qos.increment_eventually(-3) == 7  # negative increments are ignored


def test_qos_set_above_the_amqp_limit_disables_prefetch() -> None:
    recorder = Recorder()
    qos = QoS(recorder, 1)
    assert qos.set(PREFETCH_COUNT_MAX + 1) == PREFETCH_COUNT_MAX + 1
    assert recorder.values == [0]


def test_qos_with_consumer_qos(conn: Connection, channel: Any) -> None:
    consumer = Consumer(channel, [Queue(unique("q"))])
    qos = QoS(consumer.qos, 3)
    qos.update()
    assert channel.qos.prefetch_count == 3


def test_qos_is_thread_safe() -> None:
    qos = QoS(Recorder(), 1)

    def bump() -> None:
        for _ in range(1000):
            qos.increment_eventually()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert qos.value == 4001


# -- ids ---------------------------------------------------------------------

def test_uuid() -> None:
    value = uuid()
    assert str(UUID(value)) == value
    assert UUID(value).version == 4
    assert uuid() != value


def test_generate_oid_is_deterministic() -> None:
    obj = object()
    first = generate_oid(1, 2, 3, obj)
    assert first == generate_oid(1, 2, 3, obj)
    assert first != generate_oid(1, 2, 4, obj)
    assert str(UUID(first)) == first


def test_oid_from() -> None:
    a, b = object(), object()
    assert oid_from(a) == oid_from(a)
    assert oid_from(a) != oid_from(b)
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(oid_from(a)))
    thread.start()
    thread.join(5)
    assert result[0] != oid_from(a)
    other_thread: list[str] = []
    thread = threading.Thread(target=lambda: other_thread.append(oid_from(a, threads=False)))
    thread.start()
    thread.join(5)
    assert other_thread[0] == oid_from(a, threads=False)
