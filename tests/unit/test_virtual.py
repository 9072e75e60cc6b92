"""The virtual layer: routing tables, topic matching, QoS and redelivery."""

from __future__ import annotations

import re
import uuid

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
