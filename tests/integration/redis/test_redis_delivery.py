"""Acknowledgements, rejects, restores and the visibility timeout."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from kombu import Consumer, Producer, Queue

pytestmark = pytest.mark.redis

SEP = "\x06\x16"  # kombu's default separator


@pytest.fixture
def get(drain: Any) -> Any:
    def get(conn: Any, queue: Queue, n: int = 1, **kwargs: Any) -> list[Any]:
        """Receive ``n`` messages without acknowledging them."""
        got: list[Any] = []
        with Consumer(conn, [queue], callbacks=[lambda b, m: got.append(m)], **kwargs):
            drain(conn, got, n)
        return got

    return get


def test_ack_removes_the_record(connect: Any, names: Any, raw: Any, get: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    Producer(conn).publish("m", routing_key=queue.name, declare=[queue])
    [message] = get(conn, queue)
    unacked = connect.prefix + "unacked"
    assert raw.hlen(unacked) == 1
    message.ack()
    assert raw.hlen(unacked) == 0
    assert raw.zcard(connect.prefix + "unacked_index") == 0


def test_acks_inside_callbacks_are_batched_but_sent(connect: Any, names: Any, raw: Any, drain: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    producer = Producer(conn)
    for i in range(30):
        producer.publish(i, routing_key=queue.name, declare=[queue])
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())],
                  prefetch_count=10):
        drain(conn, got, 30)
    assert got == list(range(30))
    assert raw.hlen(connect.prefix + "unacked") == 0  # sent at the latest on cancel


def test_reject_requeue_redelivers_flagged(connect: Any, names: Any, get: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    producer = Producer(conn)
    producer.publish("first", routing_key=queue.name, declare=[queue])
    producer.publish("second", routing_key=queue.name)
    [message] = get(conn, queue)
    assert message.payload == "first" and not message.delivery_info.get("redelivered")
    message.requeue()
    got = get(conn, queue, 2)
    assert [m.payload for m in got] == ["second", "first"]  # requeued at the back
    assert got[1].delivery_info["redelivered"] is True
    for m in got:
        m.ack()


def test_reject_without_requeue_drops(connect: Any, names: Any, raw: Any, quiet: Any, get: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    Producer(conn).publish("m", routing_key=queue.name, declare=[queue])
    [message] = get(conn, queue)
    message.reject()
    assert raw.hlen(connect.prefix + "unacked") == 0
    assert quiet(conn) and queue(conn.default_channel).queue_declare().message_count == 0


def test_close_restores_unacked_and_prefetched_at_once(connect: Any, names: Any,
                                                       raw: Any, drain: Any, quiet: Any, get: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    producer = Producer(conn)
    for i in range(10):
        producer.publish(i, routing_key=queue.name, declare=[queue])
    consumer_conn = connect()
    got = get(consumer_conn, queue, 2, prefetch_count=5)
    got[0].ack()
    consumer_conn.close()
    assert raw.hlen(connect.prefix + "unacked") == 0
    again: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: (again.append(m), m.ack())]):
        drain(conn, again, 9)
        assert quiet(conn)
    assert [m.payload for m in again] == list(range(1, 10))
    assert again[0].delivery_info.get("redelivered") is True  # delivered once before
    assert not again[-1].delivery_info.get("redelivered")    # only prefetched


def test_visibility_timeout_restores_a_dead_consumers_messages(connect: Any, names: Any, get: Any) -> None:
    options = {"visibility_timeout": 1, "unacked_restore_interval": 0.2}
    dead = connect(**options)
    queue = Queue(names("q"))
    Producer(dead).publish("lost?", routing_key=queue.name, declare=[queue])
    [message] = get(dead, queue)
    # The consumer dies without closing: drop its sockets behind kombu's back.
    dead.default_channel._disconnect()
    dead.default_channel.qos._delivered.clear()
    alive = connect(**options)
    [again] = get(alive, queue)
    assert again.payload == "lost?"
    assert again.delivery_info["redelivered"] is True
    again.ack()


def test_live_consumer_keeps_its_messages_past_visibility_timeout(connect: Any,
                                                                  names: Any, drain: Any, quiet: Any) -> None:
    options = {"visibility_timeout": 0.6, "unacked_restore_interval": 0.1}
    conn = connect(**options)
    queue = Queue(names("q"))
    Producer(conn).publish("mine", routing_key=queue.name, declare=[queue])
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: got.append(m)]):
        drain(conn, got, 1)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # keeps refreshing while it waits
            assert quiet(conn, 0.2)
        got[0].ack()
    assert len(got) == 1


def test_malformed_messages_are_moved_aside(connect: Any, names: Any, raw: Any,
                                           caplog: Any, get: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    key = connect.prefix + queue.name
    raw.lpush(key, b"not json")
    raw.lpush(key, json.dumps({"no": "envelope"}))
    Producer(conn).publish("good", routing_key=queue.name, declare=[queue])
    # Valid JSON with a tag, but a body encoding nobody knows: moved aside too.
    bad = {"body": "x", "headers": {}, "content-type": "text/plain",
           "properties": {"delivery_tag": names("tag"), "body_encoding": "rot13",
                          "delivery_info": {"exchange": "", "routing_key": queue.name}}}
    raw.rpush(key, json.dumps(bad))  # consumed first
    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="kombu.transport.redis"):
        got = get(conn, queue)
    assert time.monotonic() - start < 0.5, "the consumer waited instead of reading on"
    assert got[0].payload == "good"
    got[0].ack()
    assert sorted(raw.lrange(key + SEP + "rejected", 0, -1)) == sorted(
        [b"not json", json.dumps({"no": "envelope"}).encode(), json.dumps(bad).encode()])
    assert "not a kombu envelope" in caplog.text and "rot13" in caplog.text
    assert raw.hlen(connect.prefix + "unacked") == 0


def test_no_ack_consumers_leave_no_records(connect: Any, names: Any, raw: Any, get: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    Producer(conn).publish("m", routing_key=queue.name, declare=[queue])
    got = get(conn, queue, no_ack=True)
    assert got[0].payload == "m"
    assert raw.hlen(connect.prefix + "unacked") == 0


def test_basic_get_records_and_acks(connect: Any, names: Any, raw: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    Producer(conn).publish("m", routing_key=queue.name, declare=[queue])
    message = queue(conn.default_channel).get()
    assert message.payload == "m"
    assert raw.hlen(connect.prefix + "unacked") == 1
    message.ack()
    assert raw.hlen(connect.prefix + "unacked") == 0
    assert queue(conn.default_channel).get() is None


def _bad_base64(tag: str, queue: str) -> str:
    """A valid kombu envelope whose base64 body cannot be decoded."""
    return json.dumps({
        "body": "!!!not-base64", "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {}, "properties": {
            "delivery_tag": tag, "body_encoding": "base64", "delivery_mode": 2, "priority": 0,
            "delivery_info": {"exchange": "", "routing_key": queue}}})


def test_undecodable_body_is_moved_aside_and_consuming_goes_on(
        connect: Any, names: Any, raw: Any, caplog: Any, drain: Any, quiet: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    key = connect.prefix + queue.name
    Producer(conn).publish("good", routing_key=queue.name, declare=[queue])
    bad = _bad_base64(names("tag"), queue.name)
    raw.rpush(key, bad)  # consumed first
    got: list[Any] = []
    with caplog.at_level(logging.ERROR, logger="kombu.transport.redis"):
        with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]):
            drain(conn, got, 1)  # raises if the error escapes drain_events
            assert quiet(conn)
    assert got == ["good"]
    assert raw.lrange(key + SEP + "rejected", 0, -1) == [bad.encode()]
    assert "cannot decode the body" in caplog.text and "Invalid base64" in caplog.text
    assert raw.hlen(connect.prefix + "unacked") == 0
    assert raw.zcard(connect.prefix + "unacked_index") == 0
    conn.close()
    assert raw.llen(key) == 0  # not put back on close either


def test_basic_get_skips_an_undecodable_body(connect: Any, names: Any, raw: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    key = connect.prefix + queue.name
    Producer(conn).publish("good", routing_key=queue.name, declare=[queue])
    bad = _bad_base64(names("tag"), queue.name)
    raw.rpush(key, bad)
    message = queue(conn.default_channel).get()
    assert message is not None and message.payload == "good"
    message.ack()
    assert raw.lrange(key + SEP + "rejected", 0, -1) == [bad.encode()]
    assert raw.hlen(connect.prefix + "unacked") == 0
