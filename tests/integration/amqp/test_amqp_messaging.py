"""Publishing and consuming through the pyamqp transport on a real RabbitMQ."""

from __future__ import annotations

import json
import socket
import textwrap
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import amqp
import pytest
from helpers import run
from helpers.kombu5 import kombu5_python
from kombu import Exchange, Producer, Queue, binding

pytestmark = pytest.mark.rabbitmq

Names = Callable[[str], str]


def _collector() -> tuple[list[Any], list[Any], Callable[[Any, Any], None]]:
    bodies: list[Any] = []
    messages: list[Any] = []

    def on(body: Any, message: Any) -> None:
        bodies.append(body)
        messages.append(message)

    return bodies, messages, on


def _get(queue: Queue, timeout: float = 5.0, **kwargs: Any) -> Any:
    """basic_get until a message is there (RabbitMQ routes asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        message = queue.get(**kwargs)
        if message is not None or time.monotonic() >= deadline:
            return message
        time.sleep(0.02)


@pytest.mark.parametrize(("kind", "routing_key", "binding_key", "arguments", "headers"), [
    ("direct", "rk", "rk", None, None),
    ("topic", "stock.usd.nyse", "stock.*.nyse", None, None),
    ("fanout", "ignored", "", None, None),
    ("headers", "", "", {"x-match": "all", "format": "pdf"}, {"format": "pdf"}),
])
def test_round_trip_per_exchange_type(connect: Callable[..., Any], names: Names, drain: Any,
                                      quiet: Any, kind: str, routing_key: str,
                                      binding_key: str, arguments: Any, headers: Any) -> None:
    conn = connect()
    exchange = Exchange(names("ex"), kind, auto_delete=True)
    queue = Queue(names("q"), exchange, binding_key, auto_delete=True,
                  binding_arguments=arguments)
    bodies, messages, on = _collector()
    with conn.Consumer(queue, callbacks=[on]):
        producer = conn.Producer(exchange=exchange)
        producer.publish({"kind": kind}, routing_key=routing_key, headers=headers)
        drain(conn, bodies, 1)
        assert bodies == [{"kind": kind}]
        info = messages[0].delivery_info
        assert info["exchange"] == exchange.name and info["routing_key"] == routing_key
        assert info["redelivered"] is False
        messages[0].ack()
        if kind in ("direct", "topic", "headers"):
            # A message that does not match is not delivered.
            nomatch = {"format": "zip"} if kind == "headers" else None
            producer.publish({"kind": "other"}, routing_key="no.match.here", headers=nomatch)
            assert quiet(conn, 0.3)


def test_properties_headers_and_priority_round_trip(connect: Callable[..., Any],
                                                    names: Names) -> None:
    conn = connect()
    queue = Queue(names("q"), auto_delete=True, max_priority=10)
    producer = conn.Producer()
    stamp = int(datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp())
    headers = {"str": "text", "int": 42, "neg": -7, "float": 1.5, "bool": True,
               "list": [1, "two", 3.0], "nested": {"a": {"b": "c"}}, "none": None,
               "bytes": b"\x00\x01"}
    producer.publish(
        "hello", routing_key=queue.name, declare=[queue], headers=headers, priority=7,
        correlation_id="corr-1", reply_to="replies", message_id="id-1", type="greeting",
        app_id="kpa-tests", user_id="guest", expiration=60, timestamp=stamp,
        serializer="json", delivery_mode=2)
    message = _get(queue(conn.default_channel))
    assert message is not None
    assert message.payload == "hello"
    assert message.content_type == "application/json"
    assert message.content_encoding == "utf-8"
    props = message.properties
    assert props["priority"] == 7
    assert props["correlation_id"] == "corr-1"
    assert props["reply_to"] == "replies"
    assert props["message_id"] == "id-1"
    assert props["type"] == "greeting"
    assert props["app_id"] == "kpa-tests"
    assert props["user_id"] == "guest"
    assert props["expiration"] == "60000"
    assert props["delivery_mode"] == 2
    assert props["timestamp"] == stamp
    got = dict(message.headers)
    assert got.pop("bytes") in (b"\x00\x01", "\x00\x01")
    assert got == {k: v for k, v in headers.items() if k != "bytes"}
    message.ack()


def test_priority_queue_delivers_high_priority_first(connect: Callable[..., Any],
                                                     names: Names) -> None:
    conn = connect()
    queue = Queue(names("q"), auto_delete=True, max_priority=10)
    producer = conn.Producer()
    for priority in (1, 9, 5, 0, 9):
        producer.publish({"p": priority}, routing_key=queue.name, declare=[queue],
                         priority=priority)
    bound = queue(conn.default_channel)
    deadline = time.monotonic() + 5
    while conn.default_channel.queue_declare(queue.name, passive=True).message_count < 5:
        assert time.monotonic() < deadline, "the broker did not queue the messages"
        time.sleep(0.02)
    seen = []
    deadline = time.monotonic() + 5
    while len(seen) < 5 and time.monotonic() < deadline:
        message = bound.get(no_ack=True)
        if message is not None:
            seen.append(message.payload["p"])
    assert seen == [9, 9, 5, 1, 0]


def test_message_ttl_queue_argument(connect: Callable[..., Any], names: Names) -> None:
    conn = connect()
    short = Queue(names("q"), auto_delete=True, message_ttl=0.2)
    raw_args = Queue(names("q"), auto_delete=True, queue_arguments={"x-message-ttl": 200})
    producer = conn.Producer()
    for queue in (short, raw_args):
        producer.publish("expires", routing_key=queue.name, declare=[queue])
    time.sleep(0.6)
    for queue in (short, raw_args):
        assert queue(conn.default_channel).get(no_ack=True) is None
    keep = Queue(names("q"), auto_delete=True, message_ttl=30)
    producer.publish("stays", routing_key=keep.name, declare=[keep])
    time.sleep(0.3)
    assert _get(keep(conn.default_channel), no_ack=True).payload == "stays"


def test_queue_expires_argument(connect: Callable[..., Any], names: Names) -> None:
    conn = connect()
    queue = Queue(names("q"), expires=0.5)
    queue(conn.default_channel).declare()
    conn.default_channel.queue_declare(queue.name, passive=True)
    time.sleep(1.5)
    channel = conn.channel()
    with pytest.raises(amqp.exceptions.NotFound):
        channel.queue_declare(queue.name, passive=True)
    assert conn.connected


def test_dead_letter_exchange(connect: Callable[..., Any], names: Names, drain: Any) -> None:
    conn = connect()
    dlx = Exchange(names("dlx"), "fanout", auto_delete=True)
    dead = Queue(names("dead"), dlx, auto_delete=True)
    work = Queue(names("work"), auto_delete=True,
                 queue_arguments={"x-dead-letter-exchange": dlx.name})
    channel = conn.default_channel
    dead(channel).declare()
    conn.Producer().publish({"job": 1}, routing_key=work.name, declare=[work])
    message = _get(work(channel))
    assert message is not None
    message.reject(requeue=False)
    dead_message = _get(dead(channel))
    assert dead_message is not None
    assert dead_message.payload == {"job": 1}
    death = dead_message.headers["x-death"][0]
    assert death["reason"] == "rejected"
    assert death["queue"] == work.name
    dead_message.ack()


def test_quorum_queue_round_trip(connect: Callable[..., Any], names: Names, drain: Any) -> None:
    conn = connect()
    queue = Queue(names("quorum"), durable=True, auto_delete=False,
                  queue_arguments={"x-queue-type": "quorum"})
    bodies, messages, on = _collector()
    with conn.Consumer(queue, callbacks=[on], prefetch_count=10):
        conn.Producer().publish({"n": 1}, routing_key=queue.name, delivery_mode=2)
        drain(conn, bodies, 1)
        messages[0].requeue()
        drain(conn, bodies, 2)
    assert bodies == [{"n": 1}, {"n": 1}]
    assert messages[1].delivery_info["redelivered"] is True
    # Quorum queues count deliveries in a header.
    assert messages[1].headers.get("x-delivery-count") == 1
    messages[1].ack()


def test_basic_get(connect: Callable[..., Any], names: Names) -> None:
    conn = connect()
    queue = Queue(names("q"), auto_delete=True)
    bound = queue(conn.default_channel)
    bound.declare()
    assert bound.get() is None
    producer = conn.Producer()
    for i in range(3):
        producer.publish({"i": i}, routing_key=queue.name)
    first = _get(bound)
    assert first.payload == {"i": 0}
    assert first.delivery_info["message_count"] in (1, 2)
    first.ack()
    assert first.acknowledged
    assert [_get(bound, no_ack=True).payload["i"] for _ in range(2)] == [1, 2]


def test_reject_with_requeue_sets_redelivered(connect: Callable[..., Any], names: Names,
                                              drain: Any, quiet: Any) -> None:
    conn = connect()
    queue = Queue(names("q"), auto_delete=True)
    bodies, messages, on = _collector()
    with conn.Consumer(queue, callbacks=[on]):
        conn.Producer().publish("again", routing_key=queue.name)
        drain(conn, bodies, 1)
        assert messages[0].delivery_info["redelivered"] is False
        messages[0].reject(requeue=True)
        drain(conn, bodies, 2)
        assert messages[1].delivery_info["redelivered"] is True
        messages[1].reject(requeue=False)  # dropped for good
        assert quiet(conn, 0.3)
        assert conn.channel().queue_declare(queue.name, passive=True).message_count == 0


def test_basic_recover_redelivers_unacked(connect: Callable[..., Any], names: Names,
                                          drain: Any) -> None:
    conn = connect()
    queue = Queue(names("q"), auto_delete=True)
    bodies, messages, on = _collector()
    with conn.Consumer(queue, callbacks=[on]) as consumer:
        producer = conn.Producer()
        producer.publish("one", routing_key=queue.name)
        producer.publish("two", routing_key=queue.name)
        drain(conn, bodies, 2)
        consumer.recover(requeue=True)
        drain(conn, bodies, 4)
        assert sorted(bodies[2:]) == ["one", "two"]
        assert all(m.delivery_info["redelivered"] for m in messages[2:])
        for message in messages[2:]:
            message.ack()


def test_prefetch_count_limits_unacked_deliveries(connect: Callable[..., Any], names: Names,
                                                  drain: Any, quiet: Any) -> None:
    conn = connect()
    queue = Queue(names("q"), auto_delete=True)
    bodies, messages, on = _collector()
    with conn.Consumer(queue, callbacks=[on], prefetch_count=2):
        producer = conn.Producer()
        for i in range(5):
            producer.publish(i, routing_key=queue.name)
        drain(conn, bodies, 2)
        assert quiet(conn, 0.4)
        assert bodies == [0, 1]
        messages[0].ack()
        drain(conn, bodies, 3)
        assert quiet(conn, 0.3)
        assert bodies == [0, 1, 2]
        for message in messages[1:]:
            message.ack()
        drain(conn, bodies, 5)


def test_global_qos_is_shared_by_the_channel(connect: Callable[..., Any], names: Names,
                                             drain: Any, quiet: Any) -> None:
    conn = connect()
    first, second = Queue(names("q"), auto_delete=True), Queue(names("q"), auto_delete=True)
    bodies, messages, on = _collector()
    channel = conn.channel()
    consumer = conn.Consumer([first, second], channel=channel, callbacks=[on])
    consumer.qos(prefetch_count=1, apply_global=True)
    consumer.consume()
    producer = conn.Producer()
    producer.publish("a", routing_key=first.name)
    producer.publish("b", routing_key=second.name)
    drain(conn, bodies, 1)
    assert quiet(conn, 0.4)
    assert len(bodies) == 1
    messages[0].ack()
    drain(conn, bodies, 2)
    assert sorted(bodies) == ["a", "b"]
    consumer.cancel()
    channel.close()


def test_exchange_to_exchange_bindings(connect: Callable[..., Any], names: Names,
                                       quiet: Any) -> None:
    conn = connect()
    channel = conn.default_channel
    source = Exchange(names("src"), "topic", auto_delete=True)(channel)
    destination = Exchange(names("dst"), "direct", auto_delete=True)(channel)
    source.declare()
    destination.declare()
    queue = Queue(names("q"), destination, "orders.new", auto_delete=True)(channel)
    queue.declare()
    destination.bind_to(source, routing_key="orders.#")
    Producer(channel, exchange=source).publish("routed", routing_key="orders.new")
    assert _get(queue, no_ack=True).payload == "routed"
    destination.unbind_from(source, routing_key="orders.#")
    Producer(channel, exchange=source).publish("lost", routing_key="orders.new")
    time.sleep(0.3)
    assert queue.get(no_ack=True) is None
    # The channel methods themselves, as kombu's pyamqp channel has them.
    channel.exchange_bind(destination=destination.name, source=source.name,
                          routing_key="orders.*")
    Producer(channel, exchange=source).publish("again", routing_key="orders.new")
    assert _get(queue, no_ack=True).payload == "again"
    channel.exchange_unbind(destination=destination.name, source=source.name,
                            routing_key="orders.*")


def test_queue_with_several_bindings(connect: Callable[..., Any], names: Names) -> None:
    conn = connect()
    exchange = Exchange(names("ex"), "direct", auto_delete=True)
    queue = Queue(names("q"), [binding(exchange, "a"), binding(exchange, "b")],
                  auto_delete=True)
    channel = conn.default_channel
    queue(channel).declare()
    producer = Producer(channel, exchange=exchange)
    producer.publish("via a", routing_key="a")
    producer.publish("via b", routing_key="b")
    producer.publish("via c", routing_key="c")
    bound = queue(channel)
    assert [_get(bound, no_ack=True).payload for _ in range(2)] == ["via a", "via b"]
    time.sleep(0.2)
    assert bound.get(no_ack=True) is None


def test_confirm_publish(connect: Callable[..., Any], names: Names) -> None:
    conn = connect(transport_options={"confirm_publish": True})
    queue = Queue(names("q"), auto_delete=True)
    producer = conn.Producer()
    producer.publish("confirmed", routing_key=queue.name, declare=[queue])
    channel = conn.default_channel
    assert channel._confirm_selected
    # Confirmed: the broker has it, no wait needed.
    assert channel.queue_declare(queue.name, passive=True).message_count == 1
    for i in range(50):
        producer.publish(i, routing_key=queue.name)
    assert channel.queue_declare(queue.name, passive=True).message_count == 51
    # Publishing to a missing exchange fails at once instead of vanishing.
    with pytest.raises(amqp.exceptions.NotFound):
        conn.Producer(conn.channel()).publish("x", exchange=names("missing"),
                                              routing_key="x")


NACK_SCRIPT = textwrap.dedent("""
    import json, sys
    from kombu import Connection, Queue
    url, name, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        producer.publish("first", routing_key=name,
                         declare=[Queue(name, queue_arguments=arguments)])
        try:
            producer.publish("second", routing_key=name)
        except Exception as exc:
            cls = type(exc)
            print(json.dumps({
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "classified": [isinstance(exc, conn.connection_errors),
                               isinstance(exc, conn.channel_errors),
                               isinstance(exc, conn.recoverable_connection_errors),
                               isinstance(exc, conn.recoverable_channel_errors)]}))
        else:
            print(json.dumps(None))
""")

#: A queue that holds one message and refuses (nacks) further publishes.
REJECT_PUBLISH = {"x-max-length": 1, "x-overflow": "reject-publish"}


def _classified(conn: Any, exc: BaseException) -> list[bool]:
    return [isinstance(exc, conn.connection_errors), isinstance(exc, conn.channel_errors),
            isinstance(exc, conn.recoverable_connection_errors),
            isinstance(exc, conn.recoverable_channel_errors)]


def _kombu5_nack(amqp_url: str, name: str, cwd: str) -> dict[str, Any]:
    """What kombu 5.x raises for the nacked second publish to ``name``."""
    proc = run([kombu5_python(), "-c", NACK_SCRIPT, amqp_url, name,
                json.dumps(REJECT_PUBLISH)], env={"PYTHONPATH": ""}, cwd=cwd)
    facts: dict[str, Any] | None = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts is not None, "kombu 5.x published to a full reject-publish queue"
    return facts


def test_confirm_publish_nack_raises_message_nacked(
        connect: Callable[..., Any], names: Names, amqp_url: str, tmp_path: Path) -> None:
    conn = connect(transport_options={"confirm_publish": True})
    queue = Queue(names("q"), queue_arguments=REJECT_PUBLISH)
    producer = conn.Producer()
    producer.publish("first", routing_key=queue.name, declare=[queue])
    with pytest.raises(amqp.exceptions.MessageNacked) as info:
        producer.publish("second", routing_key=queue.name)
    theirs = _kombu5_nack(amqp_url, names("q"), str(tmp_path))
    cls = type(info.value)
    assert f"{cls.__module__}.{cls.__qualname__}" == theirs["class"]
    assert _classified(conn, info.value) == theirs["classified"]
    # Neither the channel nor the connection is harmed; "second" was dropped.
    assert conn.connected
    bound = queue(conn.default_channel)
    assert _get(bound, no_ack=True).payload == "first"
    producer.publish("third", routing_key=queue.name)
    assert _get(bound, no_ack=True).payload == "third"
    assert bound.get(no_ack=True) is None


def test_mandatory_returns_call_on_return(connect: Callable[..., Any], names: Names) -> None:
    conn = connect()
    returned: list[tuple[Any, ...]] = []

    def on_return(exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        returned.append((exc, exchange, routing_key, message))

    exchange = Exchange(names("ex"), "direct", auto_delete=True)
    producer = conn.Producer(exchange=exchange, on_return=on_return)
    producer.publish({"lost": True}, routing_key="nobody", mandatory=True,
                     correlation_id="c-9", declare=[exchange])
    deadline = time.monotonic() + 5
    while not returned:
        assert time.monotonic() < deadline, "the unroutable message did not come back"
        try:
            conn.drain_events(timeout=0.5)
        except socket.timeout:
            pass
    exc, ex_name, routing_key, raw = returned[0]
    assert ex_name == exchange.name and routing_key == "nobody"
    assert exc.reply_code == 312 and "NO_ROUTE" in exc.reply_text
    message = conn.default_channel.message_to_python(raw)
    assert message.payload == {"lost": True}
    assert message.properties["correlation_id"] == "c-9"


def test_no_ack_consumer(connect: Callable[..., Any], names: Names, drain: Any) -> None:
    conn = connect()
    queue = Queue(names("q"), auto_delete=True)
    bodies, messages, on = _collector()
    with conn.Consumer(queue, callbacks=[on], no_ack=True):
        conn.Producer().publish("fire and forget", routing_key=queue.name)
        drain(conn, bodies, 1)
        messages[0].ack()  # a no-op for no_ack consumers
        assert not messages[0].acknowledged
        assert conn.channel().queue_declare(queue.name, passive=True).message_count == 0


def test_large_and_many_messages_in_order(connect: Callable[..., Any], names: Names,
                                          drain: Any) -> None:
    conn = connect()
    queue = Queue(names("q"), auto_delete=True)
    sizes = [0, 1, 100, 131_072, 1_000_000, 7] + [50] * 500
    bodies, messages, collect = _collector()

    def on(body: Any, message: Any) -> None:
        collect(body, message)
        message.ack()

    with conn.Consumer(queue, callbacks=[on], prefetch_count=100):
        producer = conn.Producer()
        for i, size in enumerate(sizes):
            producer.publish(bytes([i % 251]) * size, routing_key=queue.name,
                             content_type="application/octet-stream",
                             content_encoding="binary", headers={"i": i})
        drain(conn, bodies, len(sizes), timeout=30)
    assert [m.headers["i"] for m in messages] == list(range(len(sizes)))
    assert [len(b) for b in bodies] == sizes
    bad = [i for i, body in enumerate(bodies) if body != bytes([i % 251]) * len(body)]
    assert not bad, [(i, type(bodies[i]), bodies[i][:20]) for i in bad[:5]]


def _raw_get(raw: Any, queue: str, timeout: float = 5.0) -> Any:
    """basic_get through a plain ``amqp`` channel until a message is there."""
    deadline = time.monotonic() + timeout
    while True:
        message = raw.basic_get(queue, no_ack=True)
        if message is not None:
            return message
        assert time.monotonic() < deadline, f"no message in {queue} within {timeout}s"
        time.sleep(0.02)


def test_compressed_body_round_trip(connect: Callable[..., Any], names: Names,
                                    raw: Any) -> None:
    conn = connect()
    payload = {"big": "x" * 10_000}
    wire, received = Queue(names("q")), Queue(names("q"))
    for queue in (wire, received):
        conn.Producer().publish(payload, routing_key=queue.name, declare=[queue],
                                compression="zlib")
    # On the wire: the zlib stream of the JSON body, and the compression header.
    sent = _raw_get(raw, wire.name)
    assert sent.properties["application_headers"] == {"compression": "application/x-gzip"}
    assert sent.properties["content_type"] == "application/json"
    body = sent.body if isinstance(sent.body, bytes) else sent.body.encode()
    assert zlib.decompress(body) == json.dumps(payload).encode()
    assert len(body) < len(json.dumps(payload)) // 10
    message = _get(received(conn.default_channel), no_ack=True)
    assert message.headers["compression"] == "application/x-gzip"
    assert message.payload == payload


def test_prepare_message_without_headers_sends_an_empty_table(
        connect: Callable[..., Any], names: Names, raw: Any) -> None:
    conn = connect()
    queue = Queue(names("q"))
    queue(conn.default_channel).declare()
    channel = conn.default_channel
    for properties in (None, {"correlation_id": "c-1"}):
        message = channel.prepare_message(b"x", properties=properties)
        channel.basic_publish(message, routing_key=queue.name)
        assert _raw_get(raw, queue.name).properties["application_headers"] == {}


def test_simple_queue(connect: Callable[..., Any], names: Names) -> None:
    conn = connect()
    name = names("simple")
    queue = conn.SimpleQueue(name, queue_opts={"auto_delete": True})
    with pytest.raises(queue.Empty):
        queue.get_nowait()
    queue.put({"hello": "world"})
    message = queue.get(block=True, timeout=5)
    assert message.payload == {"hello": "world"}
    message.ack()
    queue.put("second")
    message = _get_nowait(queue)
    assert message.payload == "second"
    message.ack()
    with pytest.raises(queue.Empty):
        queue.get_nowait()
    assert len(queue) == 0
    queue.close()


def _get_nowait(queue: Any, timeout: float = 5.0) -> Any:
    """``get_nowait`` until the message is routed (RabbitMQ routes asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return queue.get_nowait()
        except queue.Empty:
            assert time.monotonic() < deadline, f"get_nowait found nothing within {timeout}s"
            time.sleep(0.02)


def test_drain_events_times_out(connect: Callable[..., Any]) -> None:
    conn = connect()
    conn.connect()
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        conn.drain_events(timeout=0.3)
    assert 0.25 < time.monotonic() - started < 2
    assert conn.connected


def test_seed_event_processing_over_amqp(connect: Callable[..., Any], names: Names) -> None:
    from kombu.common import eventloop

    processed: list[Any] = []

    def process_message(body: Any, message: Any) -> None:
        processed.append(body)
        message.ack()

    conn = connect()
    queue = Queue(names("test_queue"), auto_delete=True)
    with conn:
        consumer = conn.Consumer(queue, callbacks=[process_message])
        consumer.consume()
        for i in range(3):
            conn.Producer().publish({"n": i}, routing_key=queue.name)
        for _ in eventloop(conn, limit=10, timeout=0.5, ignore_timeouts=True):
            if len(processed) == 3:
                break
    assert processed == [{"n": 0}, {"n": 1}, {"n": 2}]
