"""The keys, key types and envelope are kombu 5.x's (checked with raw redis-py)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from kombu import Consumer, Exchange, Producer, Queue

pytestmark = pytest.mark.redis

SEP = "\x06\x16"  # kombu's default separator


def test_queue_is_a_list_with_kombus_envelope(connect: Any, names: Any, raw: Any) -> None:
    conn = connect(global_keyprefix="")
    exchange = Exchange(names("ex"), "direct")
    queue = Queue(names("q"), exchange, routing_key="rk")
    Producer(conn, exchange=exchange).publish(
        {"hello": "world"}, routing_key="rk", declare=[queue], headers={"h": 1}, priority=3)
    assert raw.type(queue.name) == b"none"
    key = queue.name + SEP + "3"
    assert raw.type(key) == b"list"
    [item] = raw.lrange(key, 0, -1)
    envelope = json.loads(item)
    assert set(envelope) == {"body", "content-encoding", "content-type", "headers", "properties"}
    assert json.loads(base64.b64decode(envelope["body"])) == {"hello": "world"}
    assert envelope["content-type"] == "application/json"
    assert envelope["content-encoding"] == "utf-8"
    assert envelope["headers"] == {"h": 1}
    props = envelope["properties"]
    assert props["body_encoding"] == "base64"
    assert props["delivery_info"] == {"exchange": exchange.name, "routing_key": "rk"}
    assert props["priority"] == 3
    assert props["delivery_mode"] == 2
    assert isinstance(props["delivery_tag"], str)


def test_binding_sets(connect: Any, names: Any, raw: Any) -> None:
    conn = connect(global_keyprefix="")
    direct = Exchange(names("d"), "direct")
    topic = Exchange(names("t"), "topic")
    fanout = Exchange(names("f"), "fanout")
    qd, qt, qf = Queue(names("qd"), direct, "rk"), Queue(names("qt"), topic, "a.*.#"), \
        Queue(names("qf"), fanout)
    channel = conn.default_channel
    for queue in (qd, qt, qf):
        queue(channel).declare()
    assert raw.smembers("_kombu.binding." + direct.name) == {
        f"rk{SEP}{SEP}{qd.name}".encode()}
    # kombu 5.7's regex for 'a.*.#' (TopicExchange.key_to_pattern), so both
    # clients write one identical member.
    pattern = r"^a\.[^\.]+\..*?$"
    assert raw.smembers("_kombu.binding." + topic.name) == {
        f"a.*.#{SEP}{pattern}{SEP}{qt.name}".encode()}
    assert raw.smembers("_kombu.binding." + fanout.name) == {f"{SEP}{SEP}{qf.name}".encode()}
    # Queues without x-expires are also listed as permanent (kombu 5.7), so
    # a sweep of overdue binding tables keeps their tables.
    for exchange in (direct, topic, fanout):
        assert raw.smembers("_kombu.binding_permanent." + exchange.name) == \
            raw.smembers("_kombu.binding." + exchange.name)


def test_fanout_publishes_to_db_prefixed_channel(connect: Any, names: Any, raw: Any) -> None:
    conn = connect(global_keyprefix="")
    exchange = Exchange(names("fan"), "fanout")
    pubsub = raw.pubsub()
    db = raw.connection_pool.connection_kwargs["db"]
    pubsub.psubscribe(f"/{db}.{exchange.name}*")
    deadline = time.monotonic() + 5
    while pubsub.get_message(timeout=0.5) is None and time.monotonic() < deadline:
        pass
    producer = Producer(conn, exchange=exchange)
    producer.publish("x", declare=[exchange])
    producer.publish("y", routing_key="rk")
    received = []
    while len(received) < 2 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message and message["type"] == "pmessage":
            received.append(message["channel"].decode())
    pubsub.close()
    assert received == [f"/{db}.{exchange.name}", f"/{db}.{exchange.name}/rk"]


def test_unacked_hash_and_index(connect: Any, names: Any, raw: Any, drain: Any) -> None:
    unacked, index = names("unacked"), names("index")
    conn = connect(global_keyprefix="", unacked_key=unacked, unacked_index_key=index)
    exchange = Exchange(names("ex"), "direct")
    queue = Queue(names("q"), exchange, routing_key="rk")
    Producer(conn, exchange=exchange).publish("body", routing_key="rk", declare=[queue])
    got: list[Any] = []
    before = time.time()
    with Consumer(conn, [queue], callbacks=[lambda b, m: got.append(m)]):
        drain(conn, got, 1)
        message = got[0]
        tag = message.delivery_tag
        assert raw.type(unacked) == b"hash" and raw.type(index) == b"zset"
        payload, ex, rk = json.loads(raw.hget(unacked, tag))
        # The anonymous exchange and the queue it came from: kombu 5.x (and
        # this transport) restore such a record to exactly that queue.
        assert (ex, rk) == ("", queue.name)
        # Recorded (and delivered) under tag + '@' + queue, never the bare
        # tag kombu 5.x records under: a mixed fleet's records never share a field.
        published_tag = payload["properties"]["delivery_tag"]
        assert tag == f"{published_tag}@{queue.name}"
        assert raw.hget(unacked, published_tag) is None
        assert payload["properties"]["delivery_info"] == {"exchange": exchange.name,
                                                          "routing_key": "rk"}
        assert before - 1 <= raw.zscore(index, tag) <= time.time() + 1
        message.ack()
        assert raw.hget(unacked, tag) is None
        assert raw.zscore(index, tag) is None


def test_global_keyprefix_prefixes_every_key(connect: Any, names: Any, raw: Any, drain: Any) -> None:
    conn = connect()
    prefix = connect.prefix
    exchange = Exchange(names("ex"), "direct")
    queue = Queue(names("q"), exchange, routing_key="rk")
    Producer(conn, exchange=exchange).publish("m", routing_key="rk", declare=[queue])
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: got.append(m)]):
        drain(conn, got, 1)
        keys = {k.decode() for k in raw.scan_iter(match=f"*{prefix}*")}
        assert keys == {prefix + "_kombu.binding." + exchange.name,
                        prefix + "_kombu.binding_permanent." + exchange.name,
                        prefix + "unacked", prefix + "unacked_index"}
        got[0].ack()


def test_consumes_messages_written_by_kombu(connect: Any, names: Any, raw: Any, drain: Any) -> None:
    """A message laid out exactly as kombu 5.x writes it is delivered intact."""
    conn = connect(global_keyprefix="")
    queue = Queue(names("q"))
    body = json.dumps({"k": [1, 2]}).encode()
    envelope = {
        "body": base64.b64encode(body).decode(), "content-encoding": "utf-8",
        "content-type": "application/json", "headers": {},
        "properties": {"correlation_id": "c1", "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": queue.name},
                       "priority": 0, "body_encoding": "base64", "delivery_tag": names("tag")}}
    raw.lpush(queue.name, json.dumps(envelope))
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append((b, m.properties)), m.ack())]):
        drain(conn, got, 1)
    assert got[0][0] == {"k": [1, 2]}
    assert got[0][1]["correlation_id"] == "c1"


def test_connection_options_reach_redis(connect: Any, names: Any, raw: Any) -> None:
    name = names("client")
    conn = connect(client_name=name, socket_timeout=7)
    queue = Queue(names("q"))
    Producer(conn).publish("m", routing_key=queue.name, declare=[queue])
    clients = [c for c in raw.client_list() if c.get("name") == name]
    assert clients, "client_name was not set on the connections"
    assert conn.default_channel.pool.connection_kwargs["socket_timeout"] == 7


def test_sep_and_priority_steps_options(connect: Any, names: Any, raw: Any) -> None:
    conn = connect(global_keyprefix="", sep="|", priority_steps=[0, 5])
    queue = Queue(names("q"))
    producer = Producer(conn)
    for priority in (0, 4, 7):
        producer.publish(priority, routing_key=queue.name, priority=priority, declare=[queue])
    assert raw.llen(queue.name) == 2 and raw.llen(queue.name + "|5") == 1
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]):
        while len(got) < 3:
            conn.drain_events(timeout=5)
    assert got == [0, 4, 7]


@pytest.mark.parametrize("options,topic", [
    ({"fanout_prefix": False}, "{ex}/rk"),
    ({"fanout_prefix": "/custom."}, "/custom.{ex}/rk"),
    ({"fanout_prefix": "pfx{x}.{db}."}, "pfx{{x}}.{db}.{ex}/rk"),  # only {db} is replaced
    ({"fanout_patterns": False}, "/{db}.{ex}"),
])
def test_fanout_channel_options(connect: Any, names: Any, raw: Any, options: dict[str, Any],
                                topic: str) -> None:
    conn = connect(global_keyprefix="", **options)
    exchange = Exchange(names("fan"), "fanout")
    expected = topic.format(ex=exchange.name, db=raw.connection_pool.connection_kwargs["db"])
    pubsub = raw.pubsub()
    pubsub.psubscribe("*" + exchange.name + "*")
    deadline = time.monotonic() + 5
    while pubsub.get_message(timeout=0.5) is None and time.monotonic() < deadline:
        pass
    Producer(conn, exchange=exchange).publish("x", routing_key="rk", declare=[exchange])
    received = None
    while received is None and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message and message["type"] == "pmessage":
            received = message["channel"].decode()
    pubsub.close()
    assert received == expected
