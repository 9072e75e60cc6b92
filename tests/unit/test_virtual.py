"""The virtual layer: routing tables, topic matching, QoS and redelivery."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from kombu import Connection, Exchange, Producer, Queue
from kombu.transport.virtual import BrokerState, HeadersExchange, TopicExchange


def topic_match(pattern: str, key: str) -> bool:
    return re.match(TopicExchange.key_to_pattern(pattern), key) is not None


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("a.b", "a.b", True),
    ("a.b", "a.bc", False),
    ("a.*", "a.b", True),
    ("a.*", "a.b.c", False),   # kombu 5.x matched this
    ("a.*", "a", False),
    ("*", "a", True),
    ("*", "a.b", False),
    ("a.#", "a", True),
    ("a.#", "a.b.c", True),
    ("#.c", "c", True),
    ("#.c", "a.b.c", True),
    ("#.c", "a.b.cd", False),
    ("a.#.c", "a.c", True),
    ("a.#.c", "a.x.y.c", True),
    ("a.#.c", "a.x.y.d", False),
    ("#", "", True),
    ("#", "anything.at.all", True),
    ("#.#", "a.b", True),
    ("*.b.*", "a.b.c", True),
    ("*.b.*", "a.b", False),
    ("a.b+c", "a.b+c", True),  # regex characters are literal
    ("a.b+c", "a.bbc", False),
])
def test_topic_semantics(pattern: str, key: str, expected: bool) -> None:
    assert topic_match(pattern, key) is expected


def test_headers_exchange_all_and_any() -> None:
    ex = HeadersExchange(channel=None)  # type: ignore[arg-type]
    table = [ex.prepare_bind("q_all", "x", "", {"x-match": "all", "a": 1, "b": 2}),
             ex.prepare_bind("q_any", "x", "", {"x-match": "any", "a": 1, "b": 2}),
             ex.prepare_bind("q_none", "x", "", {})]
    assert ex.lookup(table, "x", "", None, {"a": 1, "b": 2}) == {"q_all", "q_any", "q_none"}
    assert ex.lookup(table, "x", "", None, {"a": 1}) == {"q_any", "q_none"}
    assert ex.lookup(table, "x", "", None, {"c": 3}) == {"q_none"}
    with pytest.raises(ValueError, match="x-match"):
        ex.prepare_bind("q", "x", "", {"x-match": "some"})


def test_broker_state_bindings() -> None:
    state = BrokerState()
    state.binding_declare("q", "x", "rk", {"a": 1})
    assert state.has_binding("q", "x", "rk")
    assert list(state.queue_bindings("q")) == [("x", "rk", {"a": 1})]
    state.binding_delete("q", "x", "rk")
    assert not state.has_binding("q", "x", "rk")
    state.binding_declare("q", "x", "rk", None)
    state.queue_bindings_delete("q")
    assert list(state.queue_bindings("q")) == []


def names() -> tuple[str, str]:
    return f"x-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"


def test_requeued_fanout_message_returns_only_to_its_queue() -> None:
    xname, qname = names()
    exchange = Exchange(xname, "fanout")
    q1, q2 = Queue(qname + "1", exchange), Queue(qname + "2", exchange)
    with Connection("memory://") as conn:
        channel = conn.default_channel
        for q in (q1, q2):
            q(channel).declare()
        Producer(channel, exchange).publish({"n": 1})
        message = q1(channel).get()
        assert message is not None
        message.requeue()
        assert q1(channel).queue_declare(passive=True).message_count == 1
        assert q2(channel).queue_declare(passive=True).message_count == 1
        again = q1(channel).get()
        assert again.delivery_info["redelivered"] is True
        again.ack()


def test_unbound_queue_is_deleted() -> None:
    _, qname = names()
    with Connection("memory://") as conn:
        channel = conn.default_channel
        channel.queue_declare(qname)
        channel.basic_publish(channel.prepare_message(b"x"), "", qname)
        channel.queue_delete(qname)
        assert not channel._has_queue(qname)


def test_restore_keeps_order_at_the_head() -> None:
    _, qname = names()
    with Connection("memory://") as conn:
        channel = conn.channel()
        channel.queue_declare(qname)
        for i in range(4):
            channel.basic_publish(channel.prepare_message(str(i).encode()), "", qname)
        got = [channel.basic_get(qname) for _ in range(2)]
        assert [m.body for m in got] == [b"0", b"1"]
        channel.close()
        other = conn.channel()
        assert [other.basic_get(qname, no_ack=True).body for _ in range(4)] == [
            b"0", b"1", b"2", b"3"]


def test_double_ack_raises() -> None:
    from kombu.exceptions import MessageStateError

    _, qname = names()
    with Connection("memory://") as conn:
        channel = conn.default_channel
        channel.queue_declare(qname)
        channel.basic_publish(channel.prepare_message(b"x"), "", qname)
        message = channel.basic_get(qname)
        message.ack()
        with pytest.raises(MessageStateError):
            message.ack()


def test_passive_declare_of_missing_entities() -> None:
    from kombu.exceptions import ChannelError

    xname, qname = names()
    with Connection("memory://") as conn:
        channel = conn.default_channel
        with pytest.raises(ChannelError, match="NOT_FOUND"):
            channel.queue_declare(qname, passive=True)
        with pytest.raises(ChannelError, match="NOT_FOUND"):
            channel.exchange_declare(xname, passive=True)


# -- the hooks a transport written for kombu's virtual layer implements ------------


def _recording_transport() -> tuple[type, list[tuple[Any, ...]]]:
    from collections import deque
    from queue import Empty

    from kombu.transport import virtual

    calls: list[tuple[Any, ...]] = []
    queues: dict[str, deque[Any]] = {}
    table: dict[str, list[tuple[str, str, str]]] = {}

    class RecordingChannel(virtual.Channel):
        supports_fanout = True
        prefix = "none"
        from_transport_options = (*virtual.Channel.from_transport_options, "prefix")

        def _new_queue(self, queue: str, **kwargs: Any) -> None:
            calls.append(("_new_queue", queue))
            queues.setdefault(queue, deque())

        def _has_queue(self, queue: str, **kwargs: Any) -> bool:
            return queue in queues

        def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
            calls.append(("_put", queue, message["body"]))
            queues[queue].append(message)

        def _get(self, queue: str, timeout: float | None = None) -> Any:
            try:
                return queues[queue].popleft()
            except (KeyError, IndexError):
                raise Empty() from None

        def _size(self, queue: str) -> int:
            return len(queues.get(queue, ()))

        def _purge(self, queue: str) -> int:
            size = len(queues.get(queue, ()))
            queues.get(queue, deque()).clear()
            return size

        def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
            calls.append(("_delete", queue))
            queues.pop(queue, None)

        def _queue_bind(self, exchange: str, routing_key: str, pattern: str,
                        queue: str) -> None:
            calls.append(("_queue_bind", exchange, routing_key, queue))
            table.setdefault(exchange, []).append((routing_key, pattern, queue))

        def get_table(self, exchange: str) -> list[tuple[str, str, str]]:
            calls.append(("get_table", exchange))
            return table.get(exchange, [])

        def _put_fanout(self, exchange: str, message: Any, routing_key: str,
                        **kwargs: Any) -> None:
            calls.append(("_put_fanout", exchange, routing_key, message["body"]))
            for _, _, queue in table.get(exchange, []):
                queues[queue].append(message)

    class RecordingTransport(virtual.Transport):
        Channel = RecordingChannel
        driver_type = driver_name = "recording"

    return RecordingTransport, calls


def test_a_kombu_style_virtual_transport_gets_its_hooks_called() -> None:
    from kombu import Connection, Exchange, Queue

    transport_cls, calls = _recording_transport()
    conn = Connection(transport=transport_cls, transport_options={"prefix": "p-"})
    channel = conn.channel()
    assert channel.prefix == "p-"  # from_transport_options
    direct = Exchange("hooks-direct", "direct")
    fanout = Exchange("hooks-fanout", "fanout")
    q1, q2 = Queue("hooks-q1", direct, "k")(channel), Queue("hooks-q2", fanout)(channel)
    q1.declare()
    q2.declare()
    assert ("_new_queue", "hooks-q1") in calls
    assert ("_queue_bind", "hooks-direct", "k", "hooks-q1") in calls
    assert ("_queue_bind", "hooks-fanout", "", "hooks-q2") in calls

    producer = conn.Producer(channel, serializer="raw")
    producer.publish("to q1", exchange=direct, routing_key="k")
    producer.publish("to all", exchange=fanout, routing_key="ignored")
    assert ("get_table", "hooks-direct") in calls
    assert [c[:2] for c in calls if c[0] == "_put"] == [("_put", "hooks-q1")]
    assert [c[:3] for c in calls if c[0] == "_put_fanout"] == [
        ("_put_fanout", "hooks-fanout", "ignored")]
    assert q1.get(no_ack=True).body == b"to q1"
    assert q2.get(no_ack=True).body == b"to all"
    q1.delete()
    assert ("_delete", "hooks-q1") in calls
    conn.release()
