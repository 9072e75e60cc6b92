"""SimpleQueue and SimpleBuffer on the memory transport."""

from __future__ import annotations

import queue as stdqueue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import unique_name as unique
from kombu import Connection, Exchange, Producer, Queue
from kombu.exceptions import ContentDisallowed
from kombu.simple import SimpleBuffer, SimpleQueue


@pytest.fixture
def sq(conn: Connection) -> Iterator[SimpleQueue]:
    with conn.SimpleQueue(unique()) as q:
        yield q


def publish_later(conn: Connection, name: str, body: Any, delay: float) -> threading.Thread:
    """Publish ``body`` to queue ``name`` from another connection after ``delay``."""
    def run() -> None:
        time.sleep(delay)
        with Connection("memory://") as other:
            Producer(other).publish(body, routing_key=name)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_empty_is_queue_empty() -> None:
    assert SimpleQueue.Empty is stdqueue.Empty
    assert SimpleBuffer.Empty is stdqueue.Empty


def test_put_get_round_trip(sq: SimpleQueue) -> None:
    sq.put({"hello": "world"})
    message = sq.get(timeout=1)
    assert message.payload == {"hello": "world"}
    assert message.delivery_info["routing_key"] == sq.queue.name
    message.ack()


def test_fifo_order(sq: SimpleQueue) -> None:
    for i in range(5):
        sq.put(i)
    received = []
    for _ in range(5):
        message = sq.get(timeout=1)
        received.append(message.payload)
        message.ack()
    assert received == [0, 1, 2, 3, 4]


def test_defaults(conn: Connection) -> None:
    name = unique()
    q = conn.SimpleQueue(name)
    try:
        assert q.no_ack is False
        assert q.queue.name == name
        assert q.queue.routing_key == name
        assert q.queue.durable is True and q.queue.auto_delete is False
        assert q.queue.exchange == Exchange(name, "direct")
        assert q.producer.routing_key == name
        assert q.producer.exchange == Exchange(name, "direct")
        assert q.channel is conn.default_channel
        assert bool(q) is True
    finally:
        q.close()


def test_get_nowait_and_block_false(sq: SimpleQueue) -> None:
    with pytest.raises(SimpleQueue.Empty):
        sq.get_nowait()
    with pytest.raises(SimpleQueue.Empty):
        sq.get(block=False)
    sq.put("x")
    message = sq.get(block=False)
    assert message.payload == "x"
    message.ack()


@pytest.mark.parametrize("timeout", [0, 0.2])
def test_get_timeout_raises_empty_within_the_bound(sq: SimpleQueue, timeout: float) -> None:
    start = time.monotonic()
    with pytest.raises(SimpleQueue.Empty):
        sq.get(timeout=timeout)
    elapsed = time.monotonic() - start
    assert timeout <= elapsed + 0.01
    assert elapsed < timeout + 0.5


def test_blocking_get_receives_a_later_message(conn: Connection, sq: SimpleQueue) -> None:
    thread = publish_later(conn, sq.queue.name, {"late": True}, 0.1)
    message = sq.get(timeout=5)
    thread.join(5)
    assert message.payload == {"late": True}
    message.ack()
    # Consuming now: later messages come through the consumer, in order.
    sq.put(1)
    sq.put(2)
    first, second = sq.get(timeout=1), sq.get(timeout=1)
    assert (first.payload, second.payload) == (1, 2)
    first.ack()
    second.ack()


def test_blocking_get_without_timeout(conn: Connection, sq: SimpleQueue) -> None:
    thread = publish_later(conn, sq.queue.name, "eventually", 0.05)
    message = sq.get()
    thread.join(5)
    assert message.payload == "eventually"
    message.ack()


def test_timeout_while_consuming_is_still_bounded(conn: Connection, sq: SimpleQueue) -> None:
    with pytest.raises(SimpleQueue.Empty):
        sq.get(timeout=0.05)  # starts consuming
    start = time.monotonic()
    with pytest.raises(SimpleQueue.Empty):
        sq.get(timeout=0.2)
    assert time.monotonic() - start < 0.7


def test_timeout_is_an_overall_bound_with_other_consumers(conn: Connection,
                                                           sq: SimpleQueue) -> None:
    # Deliveries for another consumer of the connection keep drain_events
    # busy; get() still returns when its own time is up.
    other = conn.SimpleQueue(unique())
    stop = threading.Event()

    def feed() -> None:
        with Connection("memory://") as feeder:
            producer = Producer(feeder)
            while not stop.is_set():
                producer.publish("noise", routing_key=other.queue.name)
                time.sleep(0.005)

    other._consume()
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        with pytest.raises(SimpleQueue.Empty):
            sq.get(timeout=0.3)
        assert time.monotonic() - start < 1.0
    finally:
        stop.set()
        thread.join(5)
        other.clear()
        other.close()
    assert len(other.buffer) > 0


def test_get_nowait_returns_buffered_messages_first(conn: Connection, sq: SimpleQueue) -> None:
    with pytest.raises(SimpleQueue.Empty):
        sq.get(timeout=0)
    sq.put("first")
    sq.put("second")
    message = sq.get_nowait()
    assert message.payload == "first"
    message.ack()
    message = sq.get_nowait()
    assert message.payload == "second"
    message.ack()
    with pytest.raises(SimpleQueue.Empty):
        sq.get_nowait()


def test_qsize_len_and_clear(sq: SimpleQueue) -> None:
    assert sq.qsize() == 0
    assert len(sq) == 0
    for i in range(3):
        sq.put(i)
    assert sq.qsize() == 3
    assert len(sq) == 3
    assert sq.clear() == 3
    assert len(sq) == 0
    with pytest.raises(SimpleQueue.Empty):
        sq.get(timeout=0)


def test_put_options(sq: SimpleQueue) -> None:
    sq.put({"a": 1}, serializer="pickle", headers={"h": "v"}, compression="zlib",
           priority=3, correlation_id="cid")
    message = sq.get_nowait()
    assert message.content_type == "application/x-python-serialize"
    assert message.headers["h"] == "v"
    assert message.headers["compression"] == "application/x-gzip"
    assert message.properties["priority"] == 3
    assert message.properties["correlation_id"] == "cid"
    with pytest.raises(ContentDisallowed):
        message.decode()
    message.ack()


def test_accept(conn: Connection) -> None:
    with conn.SimpleQueue(unique(), accept=["pickle"]) as q:
        q.put({"a": {1}}, serializer="pickle")
        message = q.get(timeout=1)
        assert message.payload == {"a": {1}}
        message.ack()


def test_serializer_and_compression_options(conn: Connection) -> None:
    with conn.SimpleQueue(unique(), serializer="pickle", compression="zlib",
                          accept=["pickle"]) as q:
        q.put({"x": 1})
        message = q.get(timeout=1)
        assert message.content_type == "application/x-python-serialize"
        assert message.headers["compression"] == "application/x-gzip"
        assert message.payload == {"x": 1}
        message.ack()


def test_routing_key_argument(conn: Connection, sq: SimpleQueue) -> None:
    other = Queue(unique(), sq.queue.exchange, "elsewhere", channel=conn.default_channel)
    other.declare()
    sq.put("redirected", routing_key="elsewhere")
    assert other.get(no_ack=True).payload == "redirected"
    with pytest.raises(SimpleQueue.Empty):
        sq.get_nowait()


def test_queue_and_exchange_options(conn: Connection) -> None:
    name = unique()
    with conn.SimpleQueue(name, queue_opts={"durable": False, "max_priority": 5},
                          queue_args={"x-custom": 1},
                          exchange_opts={"type": "topic", "durable": False}) as q:
        assert q.queue.durable is False
        assert q.queue.max_priority == 5
        assert q.queue.queue_arguments == {"x-custom": 1}
        assert q.queue.exchange.type == "topic"
        assert q.queue.exchange.durable is False
        q.put("x")
        q.get(timeout=1).ack()


def test_simple_queue_from_a_queue_object(conn: Connection) -> None:
    ex = Exchange(unique("ex"), "topic")
    queue = Queue(unique(), ex, "a.#")
    with SimpleQueue(conn, queue) as q:
        assert q.queue.name == queue.name
        assert q.producer.exchange == ex
        assert q.producer.routing_key == "a.#"
        q.put("via-topic", routing_key="a.b.c")
        message = q.get(timeout=1)
        assert message.payload == "via-topic"
        message.ack()


def test_simple_queue_on_a_channel(conn: Connection) -> None:
    channel = conn.channel()
    try:
        with SimpleQueue(channel, unique()) as q:
            assert q.channel is channel
            q.put("on-channel")
            message = q.get(timeout=1)
            assert message.payload == "on-channel"
            message.ack()
    finally:
        channel.close()


def test_unacked_message_comes_back_after_the_connection_closes() -> None:
    name = unique()
    with Connection("memory://") as first:
        q = first.SimpleQueue(name)
        q.put("important")
        message = q.get(timeout=1)
        assert message.payload == "important"
        q.close()
    with Connection("memory://") as second, second.SimpleQueue(name) as q:
        again = q.get(timeout=1)
        assert again.payload == "important"
        assert again.delivery_info.get("redelivered") is True
        again.ack()


def test_acked_message_is_gone_after_reconnect() -> None:
    name = unique()
    with Connection("memory://") as first, first.SimpleQueue(name) as q:
        q.put("done")
        q.get(timeout=1).ack()
    with Connection("memory://") as second, second.SimpleQueue(name) as q:
        with pytest.raises(SimpleQueue.Empty):
            q.get(timeout=0.05)


def test_close_stops_consuming(conn: Connection, sq: SimpleQueue) -> None:
    with pytest.raises(SimpleQueue.Empty):
        sq.get(timeout=0)
    assert sq.consumer.consuming_from(sq.queue)
    sq.close()
    assert not sq.consumer.consuming_from(sq.queue)
    sq.put("after-close")
    message = sq.get(timeout=1)  # fetches directly, consumes again if needed
    assert message.payload == "after-close"
    message.ack()


# -- SimpleBuffer ------------------------------------------------------------

def test_simple_buffer_is_ephemeral(conn: Connection) -> None:
    with conn.SimpleBuffer(unique("sb")) as buf:
        assert buf.no_ack is True
        assert buf.queue.durable is False
        assert buf.queue.auto_delete is True
        ex = buf.queue.exchange
        assert (ex.durable, ex.auto_delete, ex.delivery_mode) == (False, True, 1)
        buf.put({"n": 1})
        message = buf.get(timeout=1)
        assert message.payload == {"n": 1}
        assert message.properties["delivery_mode"] == 1


def test_simple_buffer_needs_no_acks(conn: Connection) -> None:
    name = unique("sb")
    with conn.SimpleBuffer(name) as buf:
        buf.put("fire-and-forget")
        assert buf.get(timeout=1).payload == "fire-and-forget"
    conn.default_channel.basic_recover(requeue=True)
    with conn.SimpleBuffer(name) as buf, pytest.raises(SimpleBuffer.Empty):
        buf.get(timeout=0.05)


def test_simple_buffer_no_ack_override(conn: Connection) -> None:
    with conn.SimpleBuffer(unique("sb"), no_ack=False) as buf:
        assert buf.no_ack is False
        buf.put("x")
        message = buf.get(timeout=1)
        message.ack()
        assert message.acknowledged


def test_simple_buffer_get_blocks_until_published(conn: Connection) -> None:
    with conn.SimpleBuffer(unique("sb")) as buf:
        thread = publish_later(conn, buf.queue.name, "buffered", 0.05)
        assert buf.get(timeout=5).payload == "buffered"
        thread.join(5)
