"""The transport conformance suite (pytest).

Import everything from this module into a test module and provide a
``transport_url`` fixture; see :mod:`kombu.testing`.  Each test uses queue
and exchange names of its own, so the suite can run against a shared broker.
"""

from __future__ import annotations

import pickle
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.exceptions import ContentDisallowed
from kombu.simple import SimpleQueue

__all__ = (
    "DEFAULT_CAPABILITIES",
    "TestTransportBasics",
    "TestTransportDelivery",
    "TestTransportRouting",
    "TestTransportSimple",
    "_suite_cleanup",
    "kombu_connection",
    "transport_capabilities",
)

#: What the suite assumes a transport does; override ``transport_capabilities``.
DEFAULT_CAPABILITIES: dict[str, Any] = {
    # "desc": higher priority first (AMQP); "asc": lower first (kombu's
    # Redis transport); None: no ordering by priority.
    "priority_order": "desc",
    "restore_on_close": True,      # unacked messages go back when the channel closes
    "queue_size": True,            # queue_declare reports message_count
    "redelivered_flag": True,      # requeued messages carry delivery_info['redelivered']
}

#: Upper bound on every wait in the suite, in seconds.
WAIT = 10.0


@pytest.fixture
def transport_capabilities() -> dict[str, Any]:
    """What the transport under test supports (override to switch things off)."""
    return dict(DEFAULT_CAPABILITIES)


@pytest.fixture
def kombu_connection(transport_url: str) -> Iterator[Connection]:
    """A connected :class:`~kombu.Connection` to the transport under test."""
    conn = Connection(transport_url)
    conn.connect()
    try:
        yield conn
    finally:
        conn.close()


#: Names the running test created, deleted by :func:`_suite_cleanup`.
_created: list[tuple[str, str]] = []


def _name(kind: str) -> str:
    name = f"kombu-suite-{kind}-{uuid.uuid4().hex[:10]}"
    _created.append((kind, name))
    return name


@pytest.fixture(autouse=True)
def _suite_cleanup(transport_url: str) -> Iterator[None]:
    """Delete the queues and exchanges a test made (brokers are shared)."""
    _created.clear()
    yield
    if not _created:
        return
    with Connection(transport_url) as conn:
        for kind, name in reversed(_created):
            channel = conn.channel()
            try:
                if kind != "x":  # queues (SimpleQueue names an exchange too)
                    channel.queue_delete(name)
                if kind != "q":
                    channel.exchange_delete(name)
            except Exception:  # noqa: BLE001 - best effort; the entity may not exist
                pass
            finally:
                conn.maybe_close_channel(channel)
    _created.clear()


def _wait_for_count(bound: Any, n: int) -> int:
    """The queue's message count once it reaches ``n`` (brokers route asynchronously)."""
    deadline = time.monotonic() + WAIT
    count = bound.queue_declare(passive=True).message_count
    while count != n and time.monotonic() < deadline:
        time.sleep(0.02)
        count = bound.queue_declare(passive=True).message_count
    return count  # type: ignore[no-any-return]


def _require(conn: Connection, exchange_type: str) -> None:
    if not conn.supports_exchange_type(exchange_type):
        pytest.skip(f"{type(conn.transport).__name__} does not implement "
                    f"{exchange_type} exchanges")


def _collect(conn: Connection, queue: Queue, n: int, *, ack: bool = True,
             wait: float = WAIT, **consumer_opts: Any) -> list[Any]:
    """Consume ``n`` messages from ``queue`` (giving up after ``wait`` seconds)."""
    got: list[Any] = []

    def on_message(body: Any, message: Any) -> None:
        got.append((body, message))
        if ack:
            message.ack()

    deadline = time.monotonic() + wait
    with Consumer(conn, [queue], callbacks=[on_message], **consumer_opts):
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                conn.drain_events(timeout=min(left, 1.0))
            except socket.timeout:
                pass
    return got


def _appender(box: list[Any]) -> Any:
    def on_message(body: Any, message: Any) -> None:
        box.append(body)
        message.ack()
    return on_message


def _drain_nothing(conn: Connection, queue: Queue, wait: float = 0.3) -> list[Any]:
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: got.append(b)]):
        try:
            conn.drain_events(timeout=wait)
        except socket.timeout:
            pass
    return got


class TestTransportBasics:
    """Connecting, declaring and waiting."""

    def test_connect_and_close(self, transport_url: str) -> None:
        conn = Connection(transport_url)
        states = [conn.connected]
        conn.connect()
        states.append(conn.connected)
        conn.close()
        states.append(conn.connected)
        assert states == [False, True, False]

    def test_drain_events_times_out(self, kombu_connection: Connection) -> None:
        queue = Queue(_name("q"), Exchange(_name("x")), routing_key="rk")
        with Consumer(kombu_connection, [queue], callbacks=[lambda b, m: None]):
            start = time.monotonic()
            with pytest.raises(socket.timeout):
                kombu_connection.drain_events(timeout=0.3)
            elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < 5

    def test_ensure_raises_a_drain_timeout_without_reconnecting(
            self, kombu_connection: Connection) -> None:
        """A ``drain_events`` timeout through ``ensure`` is no lost connection."""
        kombu_connection.connect()
        before = kombu_connection.connection
        errors: list[Any] = []
        drain = kombu_connection.ensure(kombu_connection, kombu_connection.drain_events,
                                        max_retries=3,
                                        errback=lambda exc, interval: errors.append(exc))
        with pytest.raises(socket.timeout):
            drain(timeout=0.1)
        assert errors == [] and kombu_connection.connection is before

    def test_queue_declare_counts_and_purge(self, kombu_connection: Connection,
                                            transport_capabilities: dict[str, Any]) -> None:
        if not transport_capabilities["queue_size"]:
            pytest.skip("transport does not report queue sizes")
        exchange = Exchange(_name("x"))
        queue = Queue(_name("q"), exchange, routing_key="rk")
        channel = kombu_connection.default_channel
        bound = queue(channel)
        bound.declare()
        producer = Producer(channel, exchange, routing_key="rk")
        for i in range(3):
            producer.publish({"i": i})
        assert _wait_for_count(bound, 3) == 3
        assert bound.purge() == 3
        assert _wait_for_count(bound, 0) == 0
        bound.delete()

    def test_basic_get(self, kombu_connection: Connection) -> None:
        exchange = Exchange(_name("x"))
        queue = Queue(_name("q"), exchange, routing_key="rk")
        channel = kombu_connection.default_channel
        bound = queue(channel)
        bound.declare()
        assert bound.get() is None
        Producer(channel, exchange, routing_key="rk").publish({"n": 1})
        message = None
        deadline = time.monotonic() + WAIT
        while message is None and time.monotonic() < deadline:
            message = bound.get()
        assert message is not None and message.payload == {"n": 1}
        message.ack()
        bound.delete()


class TestTransportRouting:
    """Direct, topic, fanout and headers exchanges."""

    def test_direct(self, kombu_connection: Connection) -> None:
        exchange = Exchange(_name("x"), "direct")
        q1 = Queue(_name("q"), exchange, routing_key="a")
        q2 = Queue(_name("q"), exchange, routing_key="b")
        channel = kombu_connection.default_channel
        for q in (q1, q2):
            q(channel).declare()
        producer = Producer(channel, exchange)
        producer.publish({"to": "a"}, routing_key="a")
        producer.publish({"to": "b"}, routing_key="b")
        producer.publish({"to": "nobody"}, routing_key="c")
        assert [b for b, _ in _collect(kombu_connection, q1, 1)] == [{"to": "a"}]
        assert [b for b, _ in _collect(kombu_connection, q2, 1)] == [{"to": "b"}]
        assert _drain_nothing(kombu_connection, q1) == []

    def test_topic(self, kombu_connection: Connection) -> None:
        _require(kombu_connection, "topic")
        exchange = Exchange(_name("x"), "topic")
        star = Queue(_name("q"), exchange, routing_key="stock.*")
        hash_ = Queue(_name("q"), exchange, routing_key="stock.#")
        channel = kombu_connection.default_channel
        for q in (star, hash_):
            q(channel).declare()
        producer = Producer(channel, exchange)
        for rk in ("stock.usd", "stock.eur.nyse", "bond.usd"):
            producer.publish({"rk": rk}, routing_key=rk)
        got_star = [b["rk"] for b, _ in _collect(kombu_connection, star, 1)]
        got_hash = sorted(b["rk"] for b, _ in _collect(kombu_connection, hash_, 2))
        assert got_star == ["stock.usd"]
        assert got_hash == ["stock.eur.nyse", "stock.usd"]
        assert _drain_nothing(kombu_connection, star) == []

    def test_fanout(self, kombu_connection: Connection) -> None:
        _require(kombu_connection, "fanout")
        exchange = Exchange(_name("x"), "fanout")
        queues = [Queue(_name("q"), exchange) for _ in range(3)]
        channel = kombu_connection.default_channel
        got: list[list[Any]] = [[] for _ in queues]
        # Consumers first: on broadcast stores (Redis PUB/SUB) a fanout
        # message reaches only the queues being consumed when it is sent.
        consumers = [Consumer(channel, [q], callbacks=[_appender(box)])
                     for q, box in zip(queues, got)]
        for consumer in consumers:
            consumer.consume()
        Producer(channel, exchange).publish({"all": True}, routing_key="ignored")
        deadline = time.monotonic() + WAIT
        while any(not box for box in got) and time.monotonic() < deadline:
            try:
                kombu_connection.drain_events(timeout=0.5)
            except socket.timeout:
                pass
        for consumer in consumers:
            consumer.cancel()
        assert got == [[{"all": True}]] * 3

    def test_headers(self, kombu_connection: Connection) -> None:
        _require(kombu_connection, "headers")
        exchange = Exchange(_name("x"), "headers")
        q_all = Queue(_name("q"), exchange, binding_arguments={
            "x-match": "all", "format": "pdf", "type": "report"})
        q_any = Queue(_name("q"), exchange, binding_arguments={
            "x-match": "any", "format": "pdf", "type": "log"})
        channel = kombu_connection.default_channel
        for q in (q_all, q_any):
            q(channel).declare()
        producer = Producer(channel, exchange)
        producer.publish({"n": 1}, headers={"format": "pdf", "type": "report"})
        producer.publish({"n": 2}, headers={"format": "zip", "type": "log"})
        assert [b["n"] for b, _ in _collect(kombu_connection, q_all, 1)] == [1]
        assert sorted(b["n"] for b, _ in _collect(kombu_connection, q_any, 2)) == [1, 2]


class TestTransportDelivery:
    """Acknowledgement, rejection, redelivery, prefetch and priorities."""

    def _setup(self, conn: Connection, **queue_opts: Any) -> tuple[Queue, Producer]:
        exchange = Exchange(_name("x"))
        queue = Queue(_name("q"), exchange, routing_key="rk", **queue_opts)
        channel = conn.default_channel
        queue(channel).declare()
        return queue, Producer(channel, exchange, routing_key="rk")

    def test_properties_round_trip(self, kombu_connection: Connection) -> None:
        queue, producer = self._setup(kombu_connection)
        producer.publish({"x": [1, 2]}, headers={"h": "v"}, correlation_id="cid-1",
                         reply_to="replies", content_encoding="utf-8")
        ((body, message),) = _collect(kombu_connection, queue, 1)
        assert body == {"x": [1, 2]}
        assert message.headers["h"] == "v"
        assert message.properties["correlation_id"] == "cid-1"
        assert message.properties["reply_to"] == "replies"
        assert message.content_type == "application/json"
        assert message.delivery_info["routing_key"] == "rk"

    def test_raw_bytes_body(self, kombu_connection: Connection) -> None:
        queue, producer = self._setup(kombu_connection)
        payload = bytes(range(256))
        producer.publish(payload, content_type="application/data",
                         content_encoding="binary")
        ((body, message),) = _collect(kombu_connection, queue, 1)
        assert body == payload

    def test_reject_drops_and_requeue_redelivers(self, kombu_connection: Connection,
                                                 transport_capabilities: dict[str, Any]) -> None:
        queue, producer = self._setup(kombu_connection)
        producer.publish({"n": "dropped"})
        ((_, first),) = _collect(kombu_connection, queue, 1, ack=False)
        first.reject()
        producer.publish({"n": "again"})
        ((_, second),) = _collect(kombu_connection, queue, 1, ack=False)
        second.requeue()
        ((body, third),) = _collect(kombu_connection, queue, 1)
        assert body == {"n": "again"}
        if transport_capabilities["redelivered_flag"]:
            assert third.delivery_info.get("redelivered") is True
        assert _drain_nothing(kombu_connection, queue) == []

    def test_unacked_restored_when_channel_closes(self, transport_url: str,
                                                  transport_capabilities: dict[str, Any]) -> None:
        if not transport_capabilities["restore_on_close"]:
            pytest.skip("transport does not restore unacked messages on close")
        with Connection(transport_url) as conn:
            queue, producer = self._setup(conn)
            producer.publish({"n": 1})
            producer.publish({"n": 2})
            channel = conn.channel()
            got = _collect_on(channel, conn, queue, 2)
            assert [b["n"] for b, _ in got] == [1, 2]
            channel.close()
            again = _collect(conn, queue, 2)
            assert sorted(b["n"] for b, _ in again) == [1, 2]

    def test_copies_routed_to_two_queues_are_acknowledged_apart(
            self, transport_url: str, transport_capabilities: dict[str, Any]) -> None:
        """One publish reaching two queues: each copy has its own delivery tag,
        so acking one neither acks nor loses the other."""
        if not transport_capabilities["restore_on_close"]:
            pytest.skip("transport does not restore unacked messages on close")
        with Connection(transport_url) as conn:
            exchange = Exchange(_name("x"), "direct")
            queues = [Queue(_name("q"), exchange, routing_key="rk") for _ in range(2)]
            channel = conn.default_channel
            for queue in queues:
                queue(channel).declare()
            Producer(channel, exchange, routing_key="rk").publish({"n": 1})
            consuming = conn.channel()
            held = _collect_on(consuming, conn, queues, 2)
            assert [b for b, _ in held] == [{"n": 1}] * 2
            assert held[0][1].delivery_tag != held[1][1].delivery_tag
            held[0][1].ack()
            consuming.close()  # the unacknowledged copy goes back to its queue
            again = [m for q in queues for _, m in _collect(conn, q, 1, wait=2)]
            assert len(again) == 1 and again[0].payload == {"n": 1}

    def test_prefetch_limits_unacked(self, kombu_connection: Connection) -> None:
        queue, producer = self._setup(kombu_connection)
        for i in range(5):
            producer.publish({"i": i})
        # Two arrive at once; the other three must not come within a second.
        got = _collect(kombu_connection, queue, 5, ack=False, wait=1.0, prefetch_count=2)
        assert len(got) == 2
        for _, message in got:
            message.ack()
        rest = _collect(kombu_connection, queue, 3)
        assert sorted(b["i"] for b, _ in got + rest) == list(range(5))

    def test_priorities(self, kombu_connection: Connection,
                        transport_capabilities: dict[str, Any]) -> None:
        order = transport_capabilities["priority_order"]
        if order is None:
            pytest.skip("transport does not order by priority")
        queue, producer = self._setup(kombu_connection, max_priority=9)
        for priority in (1, 9, 5):
            producer.publish({"p": priority}, priority=priority)
        got = [b["p"] for b, _ in _collect(kombu_connection, queue, 3, prefetch_count=1)]
        assert got == ([9, 5, 1] if order == "desc" else [1, 5, 9])

    def test_pickle_refused_unless_accepted(self, kombu_connection: Connection) -> None:
        queue, producer = self._setup(kombu_connection)
        producer.publish({"evil": True}, serializer="pickle")
        errors: list[BaseException] = []

        def on_decode_error(message: Any, exc: BaseException) -> None:
            errors.append(exc)
            message.ack()

        with Consumer(kombu_connection, [queue], callbacks=[lambda b, m: None],
                      on_decode_error=on_decode_error):
            kombu_connection.drain_events(timeout=WAIT)
        assert len(errors) == 1 and isinstance(errors[0], ContentDisallowed)
        producer.publish({"trusted": True}, serializer="pickle")
        got = _collect(kombu_connection, queue, 1, accept=["pickle"])
        assert [b for b, _ in got] == [{"trusted": True}]
        assert pickle.loads(pickle.dumps(errors[0])).__class__ is ContentDisallowed

    def test_consumer_in_another_thread(self, transport_url: str) -> None:
        exchange = Exchange(_name("x"))
        queue = Queue(_name("q"), exchange, routing_key="rk")
        received: list[Any] = []
        ready = threading.Event()

        def on_message(body: Any, message: Any) -> None:
            received.append(body)
            message.ack()

        def consume() -> None:
            with Connection(transport_url) as conn:
                with Consumer(conn, [queue], callbacks=[on_message]):
                    ready.set()
                    deadline = time.monotonic() + WAIT
                    while len(received) < 3 and time.monotonic() < deadline:
                        try:
                            conn.drain_events(timeout=0.5)
                        except socket.timeout:
                            pass

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        assert ready.wait(WAIT)
        with Connection(transport_url) as conn:
            producer = Producer(conn.default_channel, exchange, routing_key="rk")
            for i in range(3):
                producer.publish({"i": i})
        thread.join(WAIT + 5)
        assert not thread.is_alive()
        assert sorted(b["i"] for b in received) == [0, 1, 2]


class TestTransportSimple:
    """SimpleQueue and SimpleBuffer."""

    def test_simple_queue(self, kombu_connection: Connection) -> None:
        name = _name("simple")
        with kombu_connection.SimpleQueue(name) as q:
            q.put({"hello": "world"})
            q.put("text")
            first = q.get(timeout=WAIT)
            assert first.payload == {"hello": "world"}
            first.ack()
            second = q.get(timeout=WAIT)
            assert second.payload == "text"
            second.ack()
            start = time.monotonic()
            with pytest.raises(SimpleQueue.Empty):
                q.get(timeout=0.3)
            assert time.monotonic() - start < 5
            with pytest.raises(SimpleQueue.Empty):
                q.get_nowait()
            q.clear()

    def test_simple_buffer(self, kombu_connection: Connection) -> None:
        with kombu_connection.SimpleBuffer(_name("buffer")) as b:
            b.put({"n": 1})
            assert b.get(timeout=WAIT).payload == {"n": 1}


def _collect_on(channel: Any, conn: Connection, queue: Queue | list[Queue],
                n: int) -> list[Any]:
    """Consume ``n`` messages on ``channel`` without acknowledging them."""
    got: list[Any] = []
    queues = queue if isinstance(queue, list) else [queue]
    consumer = Consumer(channel, queues, callbacks=[lambda b, m: got.append((b, m))])
    consumer.consume()
    deadline = time.monotonic() + WAIT
    while len(got) < n and time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=0.5)
        except socket.timeout:
            pass
    return got
