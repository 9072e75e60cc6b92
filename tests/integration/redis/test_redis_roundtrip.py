"""Publish and consume through direct, topic and fanout exchanges."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import pytest
from kombu import Consumer, Exchange, Producer, Queue
from kombu.exceptions import ChannelError

pytestmark = pytest.mark.redis


@pytest.fixture
def consume(drain: Any, quiet: Any) -> Any:
    def consume(conn: Any, queues: list[Queue], n: int, **kwargs: Any) -> list[Any]:
        got: list[Any] = []

        def on_message(body: Any, message: Any) -> None:
            got.append(body)
            message.ack()

        with Consumer(conn, queues, callbacks=[on_message], **kwargs):
            drain(conn, got, n)
            assert quiet(conn)
        return got

    return consume


def test_direct_exchange_routes_by_exact_key(connect: Any, names: Any, consume: Any) -> None:
    conn = connect()
    exchange = Exchange(names("ex"), "direct")
    queue = Queue(names("q"), exchange, routing_key="rk")
    producer = Producer(conn, exchange=exchange)
    producer.publish({"n": 1}, routing_key="rk", declare=[queue])
    producer.publish({"n": 2}, routing_key="other")
    producer.publish({"n": 3}, routing_key="rk")
    assert consume(conn, [queue], 2) == [{"n": 1}, {"n": 3}]


def test_topic_exchange_uses_amqp_wildcards(connect: Any, names: Any, consume: Any) -> None:
    conn = connect()
    exchange = Exchange(names("ex"), "topic")
    star = Queue(names("star"), exchange, routing_key="a.*")
    hash_ = Queue(names("hash"), exchange, routing_key="a.#")
    producer = Producer(conn, exchange=exchange)
    for queue in (star, hash_):
        queue(conn.default_channel).declare()
    for key in ("a.b", "a.b.c", "a", "b.a"):
        producer.publish(key, routing_key=key)
    assert consume(conn, [star], 1) == ["a.b"]
    assert sorted(consume(conn, [hash_], 3)) == ["a", "a.b", "a.b.c"]


def test_fanout_reaches_every_consumer(connect: Any, names: Any, drain: Any) -> None:
    exchange = Exchange(names("fan"), "fanout")
    queues = [Queue(names("q1"), exchange), Queue(names("q2"), exchange)]
    conns = [connect(), connect()]
    got: list[list[Any]] = [[], []]
    consumers = []
    for conn, queue, bucket in zip(conns, queues, got):
        consumer = Consumer(conn, [queue],
                            callbacks=[lambda b, m, bucket=bucket: (bucket.append(b), m.ack())])
        consumer.consume()
        consumers.append(consumer)
    Producer(connect(), exchange=exchange).publish({"hello": "all"})
    for conn, bucket in zip(conns, got):
        drain(conn, bucket, 1)
    assert got == [[{"hello": "all"}], [{"hello": "all"}]]
    for consumer in consumers:
        consumer.cancel()


@pytest.mark.parametrize("fanout_prefix", [True, False, "/custom.", "custom:", "x[1]*{db}:",
                                           "pfx{x}.", "{}{db}{0}{"])
@pytest.mark.parametrize("routing_key", ["", "rk"])
def test_fanout_prefix_options_deliver(connect: Any, names: Any, drain: Any, quiet: Any,
                                       fanout_prefix: Any, routing_key: str) -> None:
    """Any string prefix works (kombu 5.x dropped messages of one without a '/')."""
    exchange = Exchange(names("fan"), "fanout")
    conn = connect(fanout_prefix=fanout_prefix)
    got: list[Any] = []
    with Consumer(conn, [Queue(names("q"), exchange)],
                  callbacks=[lambda b, m: (got.append(b), m.ack())]):
        assert quiet(conn)  # subscribed
        Producer(connect(fanout_prefix=fanout_prefix), exchange=exchange).publish(
            "hello", routing_key=routing_key)
        drain(conn, got, 1)
        assert quiet(conn)
    assert got == ["hello"]


def test_priorities_follow_kombu_redis_order(connect: Any, names: Any, consume: Any) -> None:
    """Lower numbers first (kombu's Redis semantics), FIFO within a step."""
    conn = connect()
    queue = Queue(names("pri"))
    producer = Producer(conn)
    for body, priority in (("p9", 9), ("p0", 0), ("p5", 5), ("p3", 3), ("p7", 7)):
        producer.publish(body, routing_key=queue.name, priority=priority, declare=[queue])
    assert consume(conn, [queue], 5) == ["p0", "p5", "p3", "p7", "p9"]


def test_round_robin_between_queues(connect: Any, names: Any, consume: Any) -> None:
    conn = connect()
    q1, q2 = Queue(names("a")), Queue(names("b"))
    producer = Producer(conn)
    for i in range(4):
        for queue in (q1, q2):
            producer.publish(f"{queue.name[:4]}{i}", routing_key=queue.name, declare=[queue])
    got = consume(conn, [q1, q2], 8)
    assert sorted(got) == sorted(f"kr-{x}{i}" for x in "ab" for i in range(4))
    firsts = {body[3] for body in got[:2]}
    assert firsts == {"a", "b"}, got


def test_prefetch_batches_still_deliver_everything(connect: Any, names: Any, consume: Any) -> None:
    conn = connect(consume_batch_size=7)
    queue = Queue(names("batch"))
    producer = Producer(conn)
    for i in range(50):
        producer.publish(i, routing_key=queue.name, declare=[queue])
    got = consume(conn, [queue], 50, prefetch_count=20)
    assert got == list(range(50))


def test_simple_queue(connect: Any, names: Any) -> None:
    conn = connect()
    q = conn.SimpleQueue(names("simple"))
    q.put({"x": 1})
    q.put({"x": 2})
    assert q.qsize() == 2
    first = q.get(timeout=5)
    assert first.payload == {"x": 1}
    first.ack()
    second = q.get_nowait()
    assert second.payload == {"x": 2}
    second.ack()
    with pytest.raises(q.Empty):
        q.get(timeout=0.2)
    q.put("gone")
    assert q.clear() == 1
    q.close()


def test_drain_events_times_out_without_spinning(connect: Any, names: Any) -> None:
    conn = connect()
    queue = Queue(names("idle"))
    with Consumer(conn, [queue], callbacks=[lambda b, m: None]):
        start = time.monotonic()
        with pytest.raises(socket.timeout):
            conn.drain_events(timeout=0.4)
        elapsed = time.monotonic() - start
    assert 0.35 <= elapsed < 1.5
    channel = conn.default_channel
    assert channel.fetcher.tracking, "the consumer fell back to polling"


def test_blocked_consumer_wakes_up_at_once(connect: Any, names: Any) -> None:
    conn, publisher = connect(), connect()
    queue = Queue(names("wake"))
    queue(conn.default_channel).declare()
    got: list[Any] = []
    arrived: list[float] = []

    def on_message(body: Any, message: Any) -> None:
        arrived.append(time.monotonic())
        got.append(body)
        message.ack()

    sent: list[float] = []

    def publish() -> None:
        time.sleep(0.3)
        sent.append(time.monotonic())
        Producer(publisher).publish("ping", routing_key=queue.name)

    with Consumer(conn, [queue], callbacks=[on_message]):
        thread = threading.Thread(target=publish)
        thread.start()
        conn.drain_events(timeout=5)
        thread.join(5)
    assert got == ["ping"]
    assert arrived[0] - sent[0] < 0.2


def test_queue_declare_purge_and_delete(connect: Any, names: Any, raw: Any) -> None:
    conn = connect(global_keyprefix="")
    queue = Queue(names("misc"))
    channel = conn.default_channel
    producer = Producer(channel)
    for priority in (0, 3, 9):
        producer.publish("m", routing_key=queue.name, priority=priority, declare=[queue])
    assert queue(channel).queue_declare(passive=True).message_count == 3
    assert queue(channel).purge() == 3
    producer.publish("m", routing_key=queue.name)
    queue(channel).delete()
    assert not raw.exists(queue.name)
    with pytest.raises(ChannelError):
        queue(channel).queue_declare(passive=True)


def test_priority_queue_order_strategy_drains_in_order(connect: Any, names: Any,
                                                       consume: Any) -> None:
    conn = connect(queue_order_strategy="priority")
    first, second = Queue(names("first")), Queue(names("second"))
    producer = Producer(conn)
    for i in range(3):
        producer.publish(f"s{i}", routing_key=second.name, declare=[second])
        producer.publish(f"f{i}", routing_key=first.name, declare=[first])
    assert consume(conn, [first, second], 6) == ["f0", "f1", "f2", "s0", "s1", "s2"]


def test_without_ack_emulation(connect: Any, names: Any, raw: Any, consume: Any) -> None:
    conn = connect(ack_emulation=False)
    queue = Queue(names("q"))
    Producer(conn).publish("m", routing_key=queue.name, declare=[queue])
    assert consume(conn, [queue], 1) == ["m"]
    assert raw.exists(connect.prefix + "unacked") == 0


def test_queue_expires_sets_a_ttl(connect: Any, names: Any, raw: Any) -> None:
    conn = connect()
    queue = Queue(names("q"), expires=30)
    Producer(conn).publish("m", routing_key=queue.name, declare=[queue], priority=6)
    ttl = raw.pttl(connect.prefix + queue.name + "\x06\x166")
    assert 25_000 < ttl <= 30_000


def test_falls_back_to_polling_without_client_tracking(redis_server: Any, names: Any,
                                                       caplog: Any) -> None:
    """An ACL that forbids CLIENT: consumers poll, and still get every message."""
    from kombu import Connection

    server = redis_server("--user", "bob", "on", ">bob-pw", "~*", "&*", "+@all", "-client",
                          "--user", "default", "off")
    queue = Queue(names("q"))
    with Connection(f"redis://bob:bob-pw@127.0.0.1:{server.port}/0") as conn, \
            caplog.at_level(logging.WARNING, logger="kombu.transport.redis"):
        got: list[Any] = []
        with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]):
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=0.2)
            Producer(conn.channel()).publish("late", routing_key=queue.name)
            start = time.monotonic()
            conn.drain_events(timeout=5)
            assert time.monotonic() - start < 0.5
        assert got == ["late"]
    assert "refused client-side tracking" in caplog.text


def test_unix_socket(redis_server: Any, tmp_path: Any) -> None:
    from kombu import Connection

    path = tmp_path / "redis.sock"
    redis_server("--unixsocket", str(path), "--unixsocketperm", "700")
    with Connection(f"redis+socket://{path}") as conn:
        queue = conn.SimpleQueue("kr-socket")
        queue.put({"via": "socket"})
        message = queue.get(timeout=5)
        assert message.payload == {"via": "socket"}
        message.ack()
        queue.close()
