"""Producer and Consumer on the memory transport."""

from __future__ import annotations

import pickle
import socket
import zlib
from typing import Any

import pytest
from helpers import unique_name as unique
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.exceptions import ContentDisallowed, DecodeError, NotBoundError, OperationalError
from kombu.utils.functional import ChannelPromise


class Collector:
    """A consumer callback that keeps ``(body, message)`` pairs."""

    def __init__(self, ack: bool = True) -> None:
        self.ack = ack
        self.received: list[tuple[Any, Any]] = []

    def __call__(self, body: Any, message: Any) -> None:
        self.received.append((body, message))
        if self.ack:
            message.ack()

    @property
    def bodies(self) -> list[Any]:
        return [body for body, _ in self.received]


def drain(conn: Connection, n: int, timeout: float = 1.0) -> None:
    for _ in range(n):
        conn.drain_events(timeout=timeout)


def assert_idle(conn: Connection) -> None:
    with pytest.raises(socket.timeout):
        conn.drain_events(timeout=0.05)


# -- round trips per exchange type -------------------------------------------

@pytest.mark.parametrize(("type_", "binding_key", "routing_key", "arrives"), [
    ("direct", "rk", "rk", True),
    ("direct", "rk", "other", False),
    ("topic", "stock.*.nyse", "stock.ibm.nyse", True),
    ("topic", "stock.#", "stock.ibm.nyse", True),
    ("topic", "stock.*", "stock.ibm.nyse", False),
    ("fanout", "", "anything", True),
])
def test_round_trip_by_exchange_type(conn: Connection, channel: Any, type_: str,
                                     binding_key: str, routing_key: str, arrives: bool) -> None:
    ex = Exchange(unique("ex"), type_)
    queue = Queue(unique("q"), ex, binding_key)
    collector = Collector()
    with Consumer(channel, [queue], callbacks=[collector]):
        Producer(channel, ex).publish({"hello": "world"}, routing_key=routing_key)
        if arrives:
            drain(conn, 1)
            assert collector.bodies == [{"hello": "world"}]
            message = collector.received[0][1]
            assert message.delivery_info["exchange"] == ex.name
            assert message.delivery_info["routing_key"] == routing_key
        else:
            assert_idle(conn)
            assert collector.received == []


def test_fanout_reaches_every_bound_queue(conn: Connection, channel: Any) -> None:
    ex = Exchange(unique("ex"), "fanout")
    queues = [Queue(unique("q"), ex) for _ in range(3)]
    collector = Collector()
    with Consumer(channel, queues, callbacks=[collector]):
        Producer(channel, ex).publish("news")
        drain(conn, 3)
    assert collector.bodies == ["news"] * 3
    assert {m.delivery_info["routing_key"] for _, m in collector.received} == {""}


@pytest.mark.parametrize(("match", "headers", "arrives"), [
    ("all", {"a": 1, "b": 2}, True),
    ("all", {"a": 1}, False),
    ("any", {"a": 1}, True),
    ("any", {"c": 3}, False),
])
def test_headers_exchange(conn: Connection, channel: Any, match: str, headers: dict[str, Any],
                          arrives: bool) -> None:
    ex = Exchange(unique("ex"), "headers")
    queue = Queue(unique("q"), ex, binding_arguments={"x-match": match, "a": 1, "b": 2})
    collector = Collector()
    with Consumer(channel, [queue], callbacks=[collector]):
        Producer(channel, ex).publish("h", headers=headers)
        if arrives:
            drain(conn, 1)
            assert collector.bodies == ["h"]
            assert collector.received[0][1].headers == headers
        else:
            assert_idle(conn)


def test_default_exchange_routes_by_queue_name(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    with Consumer(channel, [queue], callbacks=[collector]):
        Producer(channel).publish([1, 2], routing_key=queue.name)
        drain(conn, 1)
    assert collector.bodies == [[1, 2]]


# -- message properties ------------------------------------------------------

def test_properties_arrive(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"), max_priority=9)
    reply_queue = Queue(unique("reply"))
    collector = Collector()
    headers = {"h1": "v1", "n": 2}
    with Consumer(channel, [queue], callbacks=[collector]):
        Producer(channel).publish(
            {"x": 1}, routing_key=queue.name, headers=headers, priority=7, expiration=1.5,
            correlation_id="cid-1", reply_to=reply_queue, type="greeting", app_id="tests",
        )
        drain(conn, 1)
    message = collector.received[0][1]
    props = message.properties
    assert message.headers == headers
    assert props["priority"] == 7
    assert props["expiration"] == "1500"
    assert props["correlation_id"] == "cid-1"
    assert props["reply_to"] == reply_queue.name
    assert props["type"] == "greeting"
    assert props["app_id"] == "tests"
    assert props["delivery_mode"] == 2
    assert headers == {"h1": "v1", "n": 2}


@pytest.mark.parametrize(("exchange_mode", "publish_mode", "expected"), [
    (None, None, 2),
    ("transient", None, 1),
    ("transient", "persistent", 2),
    (None, 1, 1),
    (None, "transient", 1),
])
def test_delivery_mode(channel: Any, exchange_mode: Any, publish_mode: Any,
                       expected: int) -> None:
    ex = Exchange(unique("ex"), delivery_mode=exchange_mode)
    queue = Queue(unique("q"), ex, "rk", channel=channel)
    queue.declare()
    Producer(channel, ex).publish("m", routing_key="rk", delivery_mode=publish_mode)
    message = queue.get(no_ack=True)
    assert message.properties["delivery_mode"] == expected


def test_exchange_argument_overrides_the_default(channel: Any) -> None:
    default = Exchange(unique("default"), delivery_mode="persistent")
    other = Exchange(unique("other"), "topic", delivery_mode="transient")
    queue = Queue(unique("q"), other, "a.*", channel=channel)
    queue.declare()
    producer = Producer(channel, default)
    producer.publish("by-object", exchange=other, routing_key="a.b")
    producer.publish("by-name", exchange=other.name, routing_key="a.c")
    first, second = queue.get(no_ack=True), queue.get(no_ack=True)
    assert (first.payload, first.properties["delivery_mode"]) == ("by-object", 1)
    # A name inherits the default exchange's delivery mode, as in kombu.
    assert (second.payload, second.properties["delivery_mode"]) == ("by-name", 2)


# -- serialization -----------------------------------------------------------

@pytest.mark.parametrize(("body", "kwargs", "content_type", "raw", "decoded"), [
    ({"a": 1}, {}, "application/json", b'{"a": 1}', {"a": 1}),
    ("text", {}, "text/plain", b"text", "text"),
    (b"\x00\x01", {}, "application/data", b"\x00\x01", b"\x00\x01"),
    ("é", {"content_type": "text/x-custom"}, "text/x-custom", "é".encode(), "é"),
    (b"\xff", {"content_type": "application/x-blob"}, "application/x-blob", b"\xff", b"\xff"),
    ([1, "a"], {"serializer": "json"}, "application/json", b'[1, "a"]', [1, "a"]),
])
def test_serialization(channel: Any, body: Any, kwargs: dict[str, Any], content_type: str,
                       raw: bytes, decoded: Any) -> None:
    queue = Queue(unique("q"), channel=channel)
    queue.declare()
    Producer(channel).publish(body, routing_key=queue.name, **kwargs)
    message = queue.get(no_ack=True, accept=["json", content_type])
    assert message.content_type == content_type
    assert message.body == raw
    assert message.payload == decoded


def test_content_encoding_defaults_for_raw_content(channel: Any) -> None:
    queue = Queue(unique("q"), channel=channel)
    queue.declare()
    producer = Producer(channel)
    producer.publish("txt", routing_key=queue.name, content_type="text/x-a")
    producer.publish(b"bin", routing_key=queue.name, content_type="application/x-b")
    producer.publish("latin", routing_key=queue.name, content_type="text/x-c",
                     content_encoding="latin-1")
    first, second, third = (queue.get(no_ack=True) for _ in range(3))
    assert first.content_encoding == "utf-8"
    assert second.content_encoding == "binary"
    assert (third.content_encoding, third.body) == ("latin-1", b"latin")


def test_producer_default_serializer(channel: Any) -> None:
    queue = Queue(unique("q"), channel=channel)
    queue.declare()
    Producer(channel, serializer="pickle").publish({"a": {1, 2}}, routing_key=queue.name)
    message = queue.get(no_ack=True, accept=["pickle"])
    assert message.content_type == "application/x-python-serialize"
    assert message.payload == {"a": {1, 2}}


def test_accept_list_refuses_pickle(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    errors: list[tuple[Any, BaseException]] = []
    collector = Collector()
    consumer = Consumer(channel, [queue], callbacks=[collector], accept=["json"],
                        on_decode_error=lambda message, exc: errors.append((message, exc)))
    assert consumer.accept == {"application/json"}
    with consumer:
        producer = Producer(channel)
        producer.publish({"evil": True}, routing_key=queue.name, serializer="pickle")
        producer.publish({"good": True}, routing_key=queue.name)
        drain(conn, 2)
    assert len(errors) == 1
    message, exc = errors[0]
    assert isinstance(exc, ContentDisallowed)
    assert message.content_type == "application/x-python-serialize"
    assert collector.bodies == [{"good": True}]
    message.reject()


def test_default_accept_refuses_pickle(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    errors: list[BaseException] = []
    with Consumer(channel, [queue], callbacks=[Collector()],
                  on_decode_error=lambda message, exc: errors.append(exc)) as consumer:
        assert consumer.accept is None
        Producer(channel).publish(1, routing_key=queue.name, serializer="pickle")
        drain(conn, 1)
    assert len(errors) == 1 and isinstance(errors[0], ContentDisallowed)


def test_accept_listing_pickle_decodes_it(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    with Consumer(channel, [queue], callbacks=[collector], accept=["pickle", "json"]):
        Producer(channel).publish({1, 2}, routing_key=queue.name, serializer="pickle")
        drain(conn, 1)
    assert collector.bodies == [{1, 2}]


def test_decode_error_without_handler_propagates(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    with Consumer(channel, [queue], callbacks=[collector], accept=["json"]):
        Producer(channel).publish(b"{broken", routing_key=queue.name,
                                  content_type="application/json", content_encoding="utf-8")
        with pytest.raises(DecodeError):
            drain(conn, 1)
    assert collector.received == []


def test_undecompressable_body_reaches_on_decode_error(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    errors: list[tuple[Any, BaseException]] = []
    collector = Collector()
    with Consumer(channel, [queue], callbacks=[collector],
                  on_decode_error=lambda message, exc: errors.append((message, exc))):
        Producer(channel).publish(b"not compressed", routing_key=queue.name,
                                  content_type="application/json", content_encoding="utf-8",
                                  headers={"compression": "application/x-gzip"})
        drain(conn, 1)
    assert collector.received == []
    assert len(errors) == 1
    assert errors[0][0].body == b"not compressed"
    assert isinstance(errors[0][1], zlib.error)
    errors[0][0].reject()


def test_callback_errors_are_not_decode_errors(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    errors: list[BaseException] = []

    def failing(body: Any, message: Any) -> None:
        raise RuntimeError("callback failed")

    with Consumer(channel, [queue], callbacks=[failing],
                  on_decode_error=lambda m, exc: errors.append(exc)):
        Producer(channel).publish("x", routing_key=queue.name)
        with pytest.raises(RuntimeError, match="callback failed"):
            drain(conn, 1)
    assert errors == []


# -- compression -------------------------------------------------------------

@pytest.mark.parametrize("method", ["zlib", "gzip", "bzip2", "lzma"])
def test_compression_round_trip(conn: Connection, channel: Any, method: str) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    headers = {"keep": "me"}
    body = {"data": "x" * 1000}
    with Consumer(channel, [queue], callbacks=[collector]):
        Producer(channel).publish(body, routing_key=queue.name, compression=method,
                                  headers=headers)
        drain(conn, 1)
    message = collector.received[0][1]
    assert collector.bodies == [body]
    assert message.headers["compression"].startswith("application/")
    assert message.headers["keep"] == "me"
    assert headers == {"keep": "me"}  # the caller's dict is not modified


def test_producer_default_compression(channel: Any) -> None:
    queue = Queue(unique("q"), channel=channel)
    queue.declare()
    Producer(channel, compression="zlib").publish("z" * 100, routing_key=queue.name)
    message = queue.get(no_ack=True)
    assert message.headers["compression"] == "application/x-gzip"
    assert message.payload == "z" * 100


# -- declarations ------------------------------------------------------------

def test_auto_declare_declares_the_exchange_once_per_connection(conn: Connection,
                                                                 channel: Any) -> None:
    ex = Exchange(unique("ex"), "topic")
    producer = Producer(channel, ex)
    assert ex not in conn.declared_entities
    producer.publish("a", routing_key="a")
    assert ex in conn.declared_entities
    channel.exchange_delete(ex.name)
    producer.publish("b", routing_key="a")  # cached: not declared again
    with pytest.raises(Exception, match="NOT_FOUND"):
        channel.exchange_declare(exchange=ex.name, passive=True)
    conn.declared_entities.clear()  # as a reconnect does
    producer.publish("c", routing_key="a")
    channel.exchange_declare(exchange=ex.name, passive=True)


def test_auto_declare_after_the_exchange_is_replaced(channel: Any) -> None:
    producer = Producer(channel, Exchange(unique("ex")))
    producer.publish("a")
    replacement = Exchange(unique("ex"), "fanout")
    producer.exchange = replacement(channel)
    producer.publish("b")
    channel.exchange_declare(exchange=replacement.name, passive=True)


def test_auto_declare_false(channel: Any) -> None:
    ex = Exchange(unique("ex"))
    Producer(channel, ex, auto_declare=False).publish("a", routing_key="a")
    with pytest.raises(Exception, match="NOT_FOUND"):
        channel.exchange_declare(exchange=ex.name, passive=True)


def test_declare_argument_declares_entities(channel: Any) -> None:
    ex = Exchange(unique("ex"), "direct")
    queue = Queue(unique("q"), ex, "rk")
    declare = [queue]
    Producer(channel).publish("hi", exchange=ex, routing_key="rk", declare=declare)
    assert declare == [queue]  # the caller's list is not modified
    bound = queue(channel)
    assert bound.get(no_ack=True).payload == "hi"


def test_producer_declare(channel: Any) -> None:
    ex = Exchange(unique("ex"))
    producer = Producer(channel, ex, auto_declare=False)
    producer.declare()
    channel.exchange_declare(exchange=ex.name, passive=True)
    assert producer.maybe_declare(Exchange(unique("ex2"))) is True
    assert producer.maybe_declare(None) is None


# -- retry -------------------------------------------------------------------

def test_publish_retry_reconnects_and_republishes(conn: Connection) -> None:
    queue = Queue(unique("q"))
    queue(conn.default_channel).declare()
    producer = Producer(conn)
    old_channel = producer.channel
    failures: list[BaseException] = []

    def broken_publish(*args: Any, **kwargs: Any) -> None:
        raise conn.connection_errors[0]("connection lost (injected)")

    old_channel.basic_publish = broken_publish
    producer.publish({"n": 1}, routing_key=queue.name, retry=True,
                     retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0,
                                   "errback": lambda exc, interval: failures.append(exc)})
    assert len(failures) == 1
    assert producer.channel is not old_channel
    message = queue(conn.default_channel).get(no_ack=True)
    assert message.payload == {"n": 1}


def test_publish_retry_gives_up_after_max_retries(conn: Connection) -> None:
    queue = Queue(unique("q"))
    queue(conn.default_channel).declare()
    producer = Producer(conn)
    attempts: list[int] = []
    error = conn.connection_errors[0]

    original = type(producer.channel).basic_publish

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        attempts.append(1)
        raise error("still down (injected)")

    type(producer.channel).basic_publish = broken
    try:
        with pytest.raises((error, OperationalError)):
            producer.publish("x", routing_key=queue.name, retry=True,
                             retry_policy={"max_retries": 2, "interval_start": 0,
                                           "interval_step": 0})
    finally:
        type(producer.channel).basic_publish = original
    assert len(attempts) == 3


def test_publish_without_retry_propagates(conn: Connection) -> None:
    producer = Producer(conn.default_channel)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise conn.connection_errors[0]("lost (injected)")

    producer.channel.basic_publish = broken
    with pytest.raises(conn.connection_errors[0], match="injected"):
        producer.publish("x", routing_key="nowhere")


# -- Producer ----------------------------------------------------------------

def test_producer_with_connection_opens_channel_lazily(conn: Connection) -> None:
    producer = Producer(conn)
    assert producer.__connection__ is conn
    assert producer.connection is conn
    assert isinstance(producer._channel, ChannelPromise)
    assert producer.channel is conn.default_channel
    assert producer.exchange.channel is conn.default_channel


def test_producer_defaults(channel: Any) -> None:
    producer = Producer(channel)
    assert producer.exchange == Exchange("")
    assert (producer.routing_key, producer.serializer, producer.compression) == ("", None, None)
    assert producer.auto_declare is True
    assert producer.connection is channel.connection.client
    assert repr(producer) == f"<Producer: {channel!r}>"


def test_producer_exchange_by_name(channel: Any) -> None:
    producer = Producer(channel, "by-name", routing_key="rk")
    assert producer.exchange == Exchange("by-name")
    assert producer.exchange.is_bound


def test_producer_default_routing_key(channel: Any) -> None:
    queue = Queue(unique("q"), channel=channel)
    queue.declare()
    Producer(channel, routing_key=queue.name).publish("x")
    assert queue.get(no_ack=True).payload == "x"


def test_producer_revive(conn: Connection, channel: Any) -> None:
    producer = Producer(channel, Exchange("ex"))
    other = conn.channel()
    try:
        producer.revive(other)
        assert producer.channel is other
        assert producer.exchange.channel is other
    finally:
        other.close()


def test_producer_pickle(channel: Any) -> None:
    producer = Producer(channel, Exchange("ex", "topic"), routing_key="rk", serializer="json",
                        auto_declare=False, compression="zlib")
    clone = pickle.loads(pickle.dumps(producer))
    assert clone.exchange == producer.exchange
    assert (clone.routing_key, clone.serializer, clone.auto_declare, clone.compression) == (
        "rk", "json", False, "zlib")
    assert clone._channel is None


def test_producer_context_manager(channel: Any) -> None:
    with Producer(channel) as producer:
        assert isinstance(producer, Producer)
    producer.close()
    producer.release()


def test_producer_without_channel_has_no_connection() -> None:
    producer = Producer(None)
    assert producer.connection is None
    with pytest.raises(ValueError, match="needs a connection"):
        producer.publish("x", retry=True)
    with pytest.raises(NotBoundError, match="no channel"):
        producer.publish("x")


# -- Consumer ----------------------------------------------------------------

def test_consumer_defaults(channel: Any) -> None:
    queue = Queue(unique("q"))
    consumer = Consumer(channel, queue)
    assert [q.name for q in consumer.queues] == [queue.name]
    assert consumer.queues[0].is_bound
    assert consumer.no_ack is None
    assert consumer.callbacks == []
    assert consumer.accept is None
    assert consumer.connection is channel.connection.client
    assert repr(consumer) == f"<Consumer: {consumer.queues!r}>"


def test_consumer_declares_its_queues(channel: Any) -> None:
    queue = Queue(unique("q"), Exchange(unique("ex")), "rk")
    Consumer(channel, [queue])
    channel.queue_declare(queue=queue.name, passive=True)
    channel.exchange_declare(exchange=queue.exchange.name, passive=True)


def test_consumer_auto_declare_false(channel: Any) -> None:
    queue = Queue(unique("q"))
    consumer = Consumer(channel, [queue], auto_declare=False)
    with pytest.raises(Exception, match="NOT_FOUND"):
        channel.queue_declare(queue=queue.name, passive=True)
    consumer.declare()
    channel.queue_declare(queue=queue.name, passive=True)


def test_consumer_with_connection_uses_default_channel(conn: Connection) -> None:
    consumer = Consumer(conn, [Queue(unique("q"))])
    assert consumer.channel is conn.default_channel
    assert consumer.connection is conn


def test_prefetch_count_limits_unacked_deliveries(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector(ack=False)
    with Consumer(channel, [queue], callbacks=[collector], prefetch_count=1):
        for i in range(3):
            Producer(channel).publish(i, routing_key=queue.name)
        drain(conn, 1)
        assert collector.bodies == [0]
        assert_idle(conn)
        collector.received[0][1].ack()
        drain(conn, 1)
        assert collector.bodies == [0, 1]


def test_qos_changes_the_prefetch_limit(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector(ack=False)
    with Consumer(channel, [queue], callbacks=[collector]) as consumer:
        consumer.qos(prefetch_count=2)
        for i in range(4):
            Producer(channel).publish(i, routing_key=queue.name)
        drain(conn, 2)
        assert_idle(conn)
        consumer.qos(prefetch_count=0)
        drain(conn, 2)
    assert collector.bodies == [0, 1, 2, 3]


def test_cancel_stops_delivery(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    consumer = Consumer(channel, [queue], callbacks=[collector])
    consumer.consume()
    assert consumer.consuming_from(queue)
    assert consumer.consuming_from(queue.name)
    consumer.cancel()
    assert not consumer.consuming_from(queue)
    Producer(channel).publish("late", routing_key=queue.name)
    assert_idle(conn)
    assert collector.received == []
    assert queue(channel).get(no_ack=True).payload == "late"


def test_consume_twice_does_not_duplicate(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    consumer = Consumer(channel, [queue], callbacks=[collector])
    consumer.consume()
    consumer.consume()
    Producer(channel).publish("once", routing_key=queue.name)
    drain(conn, 1)
    assert_idle(conn)
    assert collector.bodies == ["once"]
    consumer.cancel()


def test_add_queue_while_consuming(conn: Connection, channel: Any) -> None:
    first, second = Queue(unique("q1")), Queue(unique("q2"))
    collector = Collector()
    with Consumer(channel, [first], callbacks=[collector]) as consumer:
        added = consumer.add_queue(second)
        assert added.is_bound
        assert not consumer.consuming_from(second)
        consumer.consume()
        assert consumer.consuming_from(second)
        Producer(channel).publish("to-second", routing_key=second.name)
        drain(conn, 1)
    assert collector.bodies == ["to-second"]
    assert {q.name for q in consumer.queues} == {first.name, second.name}


def test_cancel_by_queue(conn: Connection, channel: Any) -> None:
    first, second = Queue(unique("q1")), Queue(unique("q2"))
    collector = Collector()
    with Consumer(channel, [first, second], callbacks=[collector]) as consumer:
        consumer.cancel_by_queue(first.name)
        assert not consumer.consuming_from(first)
        assert [q.name for q in consumer.queues] == [second.name]
        Producer(channel).publish("a", routing_key=first.name)
        Producer(channel).publish("b", routing_key=second.name)
        drain(conn, 1)
        assert_idle(conn)
        consumer.cancel_by_queue(first)  # unknown now: nothing happens
    assert collector.bodies == ["b"]


def test_context_manager_consumes_and_cancels(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    with Consumer(channel, [queue], callbacks=[collector]) as consumer:
        assert consumer.consuming_from(queue)
    assert not consumer.consuming_from(queue)


def test_on_message_replaces_callbacks(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    seen: list[Any] = []
    with Consumer(channel, [queue], callbacks=[collector], on_message=seen.append):
        Producer(channel).publish({"raw": True}, routing_key=queue.name)
        drain(conn, 1)
    assert collector.received == []
    assert len(seen) == 1
    assert seen[0].body == b'{"raw": true}'
    assert seen[0].payload == {"raw": True}
    seen[0].ack()


def test_register_callback_and_receive(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    first, second = Collector(ack=False), Collector()
    consumer = Consumer(channel, [queue])
    with pytest.raises(NotImplementedError, match="callbacks"):
        consumer.receive("body", None)
    consumer.register_callback(first)
    consumer.register_callback(second)
    with consumer:
        Producer(channel).publish("x", routing_key=queue.name)
        drain(conn, 1)
    assert first.bodies == second.bodies == ["x"]
    assert first.received[0][1] is second.received[0][1]


def test_no_ack_consumer(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector(ack=False)
    with Consumer(channel, [queue], callbacks=[collector], no_ack=True):
        Producer(channel).publish("x", routing_key=queue.name)
        drain(conn, 1)
    channel.basic_recover(requeue=True)
    assert queue(channel).get() is None


def test_recover_redelivers_unacked(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    collector = Collector(ack=False)
    with Consumer(channel, [queue], callbacks=[collector]) as consumer:
        Producer(channel).publish("again", routing_key=queue.name)
        drain(conn, 1)
        consumer.recover(requeue=True)
        drain(conn, 1)
    assert collector.bodies == ["again", "again"]
    assert collector.received[1][1].delivery_info.get("redelivered") is True
    collector.received[1][1].ack()


def test_purge(channel: Any) -> None:
    first, second = Queue(unique("q1")), Queue(unique("q2"))
    consumer = Consumer(channel, [first, second])
    producer = Producer(channel)
    for queue, n in ((first, 2), (second, 3)):
        for i in range(n):
            producer.publish(i, routing_key=queue.name)
    assert consumer.purge() == 5
    assert consumer.purge() == 0


def test_flow_reaches_the_channel(channel: Any) -> None:
    consumer = Consumer(channel, [Queue(unique("q"))])
    with pytest.raises(NotImplementedError, match="flow"):
        consumer.flow(False)


def test_tag_prefix(channel: Any) -> None:
    consumer = Consumer(channel, [Queue(unique("q"))], tag_prefix="worker-")
    consumer.consume()
    (tag,) = consumer._active_tags.values()
    assert tag.startswith("worker-")
    consumer.cancel()


def test_anonymous_queue_is_known_by_its_declared_name(conn: Connection, channel: Any) -> None:
    queue = Queue("", Exchange(unique("ex"), "fanout"))
    collector = Collector()
    with Consumer(channel, [queue], callbacks=[collector]) as consumer:
        (declared,) = consumer.queues
        assert declared.name
        assert consumer.consuming_from(declared.name)
        Producer(channel, queue.exchange).publish("fan")
        drain(conn, 1)
    assert collector.bodies == ["fan"]


def test_consumer_revive_rebinds_and_redeclares(conn: Connection) -> None:
    queue = Queue(unique("q"))
    collector = Collector()
    consumer = Consumer(conn.default_channel, [queue], callbacks=[collector],
                        prefetch_count=5)
    new_channel = conn.channel()
    try:
        consumer.revive(new_channel)
        assert consumer.channel is new_channel
        assert consumer.queues[0].channel is new_channel
        assert new_channel.qos.prefetch_count == 5
        with consumer:
            Producer(new_channel).publish("revived", routing_key=queue.name)
            drain(conn, 1)
    finally:
        new_channel.close()
    assert collector.bodies == ["revived"]


def test_exit_on_connection_error_does_not_cancel(conn: Connection, channel: Any) -> None:
    queue = Queue(unique("q"))
    consumer = Consumer(channel, [queue], callbacks=[Collector()])
    error = conn.connection_errors[0]
    with pytest.raises(error):
        with consumer:
            raise error("lost (injected)")
    assert consumer.consuming_from(queue)
    consumer.cancel()
