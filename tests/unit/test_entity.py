"""Exchange, Queue and binding: declaration, binding to channels, equality, pickling."""

from __future__ import annotations

import pickle
import socket
from copy import copy
from typing import Any
from uuid import uuid4

import pytest
from helpers import unique_name as unique
from kombu import Connection, Exchange, Producer, Queue, binding
from kombu.entity import (
    PERSISTENT_DELIVERY_MODE,
    TRANSIENT_DELIVERY_MODE,
    maybe_delivery_mode,
)
from kombu.exceptions import ChannelError, ContentDisallowed, NotBoundError


def exchange_exists(channel: Any, name: str) -> bool:
    try:
        channel.exchange_declare(exchange=name, passive=True)
    except ChannelError:
        return False
    return True


def queue_exists(channel: Any, name: str) -> bool:
    try:
        Queue(name).queue_declare(passive=True, channel=channel)
    except ChannelError:
        return False
    return True


# -- delivery modes ----------------------------------------------------------

def test_delivery_mode_constants() -> None:
    assert TRANSIENT_DELIVERY_MODE == 1
    assert PERSISTENT_DELIVERY_MODE == 2
    assert Exchange.TRANSIENT_DELIVERY_MODE == 1
    assert Exchange.PERSISTENT_DELIVERY_MODE == 2


@pytest.mark.parametrize(("value", "expected"), [
    (None, 2), ("", 2), (0, 2), (1, 1), (2, 2), ("transient", 1), ("persistent", 2),
])
def test_maybe_delivery_mode(value: Any, expected: int) -> None:
    assert maybe_delivery_mode(value) == expected


def test_maybe_delivery_mode_unknown_name() -> None:
    with pytest.raises(KeyError, match="bogus"):
        maybe_delivery_mode("bogus")
    assert maybe_delivery_mode(None, default=1) == 1


# -- Exchange ----------------------------------------------------------------

def test_exchange_defaults() -> None:
    ex = Exchange("x")
    assert (ex.name, ex.type, ex.durable, ex.auto_delete, ex.passive) == (
        "x", "direct", True, False, False)
    assert ex.delivery_mode is None
    assert ex.arguments is None
    assert ex.no_declare is False
    assert Exchange().name == ""


def test_exchange_delivery_mode_names_are_converted() -> None:
    assert Exchange("x", delivery_mode="transient").delivery_mode == 1
    assert Exchange("x", delivery_mode="persistent").delivery_mode == 2
    assert Exchange("x", delivery_mode=1).delivery_mode == 1


def test_exchange_bool_attrs_are_converted() -> None:
    ex = Exchange("x", durable=0, auto_delete=1)
    assert ex.durable is False
    assert ex.auto_delete is True


def test_exchange_equality_and_hash() -> None:
    a = Exchange("x", "topic", arguments={"a": 1})
    assert a == Exchange("x", "topic", arguments={"a": 1})
    assert hash(a) == hash(Exchange("x", "topic", arguments={"a": 1}))
    assert a != Exchange("x", "direct", arguments={"a": 1})
    assert a != Exchange("y", "topic", arguments={"a": 1})
    assert a != Exchange("x", "topic", arguments={"a": 2})
    assert a != Exchange("x", "topic", arguments={"a": 1}, durable=False)
    assert a != Exchange("x", "topic", arguments={"a": 1}, delivery_mode=1)
    assert a != "x"
    assert (a == object()) is False


def test_exchange_repr_and_str(channel: Any) -> None:
    ex = Exchange("logs", "fanout")
    assert str(ex) == "Exchange logs(fanout)"
    assert repr(ex) == "<unbound Exchange logs(fanout)>"
    bound = ex(channel)
    assert repr(bound) == f"<Exchange logs(fanout) bound to chan:{channel.channel_id}>"
    assert str(Exchange("")) == "Exchange ''(direct)"


def test_exchange_unbound_channel_raises() -> None:
    ex = Exchange("x")
    assert not ex.is_bound
    with pytest.raises(NotBoundError, match="not bound to a channel"):
        ex.channel  # noqa: B018


def test_bind_returns_a_bound_copy(channel: Any) -> None:
    ex = Exchange("x", "topic")
    bound = ex.bind(channel)
    assert bound is not ex
    assert bound.is_bound and not ex.is_bound
    assert bound.channel is channel
    assert bound == ex
    also_bound = ex(channel)
    assert also_bound.is_bound and also_bound is not bound


def test_maybe_bind_binds_in_place_once(conn: Connection, channel: Any) -> None:
    ex = Exchange("x")
    assert ex.maybe_bind(channel) is ex
    assert ex.channel is channel
    other = conn.channel()
    try:
        ex.maybe_bind(other)
        assert ex.channel is channel
        ex.revive(other)
        assert ex.channel is other
    finally:
        other.close()


def test_bind_to_a_connection_uses_its_default_channel(conn: Connection) -> None:
    ex = Exchange("x").bind(conn)
    assert ex.channel is conn.default_channel


def test_exchange_declare_and_delete(channel: Any) -> None:
    name = unique("ex")
    ex = Exchange(name, "topic", channel=channel)
    assert not exchange_exists(channel, name)
    ex.declare()
    assert exchange_exists(channel, name)
    ex.delete()
    assert not exchange_exists(channel, name)


def test_exchange_declare_on_explicit_channel(channel: Any) -> None:
    name = unique("ex")
    Exchange(name).declare(channel=channel)
    assert exchange_exists(channel, name)


def test_exchange_passive_declare_of_missing_exchange_fails(channel: Any) -> None:
    ex = Exchange(unique("ex"), passive=True, channel=channel)
    with pytest.raises(ChannelError):
        ex.declare()


@pytest.mark.parametrize("name", ["", "amq.custom"])
def test_default_and_amq_exchanges_are_never_declared(channel: Any, name: str) -> None:
    name = name and f"{name}-{uuid4().hex}"
    assert Exchange(name, "fanout").declare(channel=channel) is None
    if name:
        assert not exchange_exists(channel, name)


def test_exchange_no_declare_does_not_declare(channel: Any) -> None:
    name = unique("ex")
    Exchange(name, no_declare=True).declare(channel=channel)
    assert not exchange_exists(channel, name)


def test_exchange_message_and_publish(channel: Any) -> None:
    ex = Exchange(unique("ex"), channel=channel, delivery_mode="transient")
    ex.declare()
    queue = Queue(unique("q"), ex, "rk", channel=channel)
    queue.declare()
    ex.publish(ex.Message(b"raw", content_type="application/data", content_encoding="binary",
                          headers={"h": 1}, priority=3), routing_key="rk")
    message = queue.get(accept=["application/data"])
    assert message.body == b"raw"
    assert message.headers == {"h": 1}
    assert message.properties["delivery_mode"] == 1
    assert message.properties["priority"] == 3
    message.ack()


def test_exchange_message_delivery_mode_argument_wins(channel: Any) -> None:
    ex = Exchange(unique("ex"), channel=channel, delivery_mode="transient")
    msg = ex.Message(b"x", delivery_mode="persistent")
    assert msg["properties"]["delivery_mode"] == 2
    assert ex.Message(b"x")["properties"]["delivery_mode"] == 1
    assert Exchange("y", channel=channel).Message(b"x")["properties"]["delivery_mode"] == 2


def test_exchange_publish_text(channel: Any) -> None:
    ex = Exchange(unique("ex"), channel=channel)
    ex.declare()
    queue = Queue(unique("q"), ex, "rk", channel=channel)
    queue.declare()
    ex.publish("hello", routing_key="rk")
    message = queue.get()
    assert message.content_encoding == "utf-8"
    assert message.body == b"hello"


def test_exchange_binding_helper() -> None:
    ex = Exchange("x")
    b = ex.binding("rk", arguments={"a": 1}, unbind_arguments={"b": 2})
    assert (b.exchange, b.routing_key, b.arguments, b.unbind_arguments) == (
        ex, "rk", {"a": 1}, {"b": 2})


def test_exchange_bind_to_reaches_the_channel(channel: Any) -> None:
    # The virtual transport has no exchange-to-exchange bindings; the call
    # reaching it (and failing there, clearly) is what is checked.
    dest = Exchange(unique("dest"), channel=channel)
    with pytest.raises(NotImplementedError, match="exchange_bind"):
        dest.bind_to(Exchange("src"), routing_key="rk")
    with pytest.raises(NotImplementedError, match="exchange_unbind"):
        dest.unbind_from("src", routing_key="rk")


def test_can_cache_declaration_of_exchange() -> None:
    assert Exchange("x").can_cache_declaration
    assert not Exchange("x", auto_delete=True).can_cache_declaration


def test_exchange_pickle_and_copy() -> None:
    ex = Exchange("x", "headers", durable=False, arguments={"a": 1}, delivery_mode=1)
    for clone in (pickle.loads(pickle.dumps(ex)), copy(ex)):
        assert clone == ex
        assert clone is not ex
        assert clone.type == "headers" and clone.durable is False


def test_exchange_pickle_of_bound_exchange_is_unbound(channel: Any) -> None:
    ex = Exchange("x", channel=channel)
    clone = pickle.loads(pickle.dumps(ex))
    assert clone == ex
    assert not clone.is_bound


# -- binding -----------------------------------------------------------------

def test_binding_str_repr_and_equality() -> None:
    b = binding(Exchange("ex"), "a.b")
    assert str(b) == "ex->a.b"
    assert repr(b) == "<binding: ex->a.b>"
    assert b == binding(Exchange("ex"), "a.b")
    assert hash(b) == hash(binding(Exchange("ex"), "a.b"))
    assert b != binding(Exchange("ex"), "a.c")
    assert b != binding(Exchange("other"), "a.b")
    assert str(binding(None, "k")) == "->k"


def test_binding_pickle() -> None:
    b = binding(Exchange("ex", "topic"), "a.#", arguments={"x": 1})
    clone = pickle.loads(pickle.dumps(b))
    assert clone == b
    assert clone.exchange.type == "topic"


def test_queue_with_bindings_receives_from_each(channel: Any) -> None:
    ex1 = Exchange(unique("ex1"), "direct")
    ex2 = Exchange(unique("ex2"), "topic")
    queue = Queue(unique("q"), [binding(ex1, "k1"), binding(ex2, "a.*")], channel=channel)
    assert queue.exchange is None
    assert queue.bindings == {binding(ex1, "k1"), binding(ex2, "a.*")}
    queue.declare()
    producer = Producer(channel)
    producer.publish("one", exchange=ex1, routing_key="k1")
    producer.publish("two", exchange=ex2, routing_key="a.b")
    producer.publish("none", exchange=ex2, routing_key="b.b")
    bodies = sorted(queue.get(no_ack=True).payload for _ in range(2))
    assert bodies == ["one", "two"]
    assert queue.get() is None


def test_binding_unbind(channel: Any) -> None:
    ex = Exchange(unique("ex"))
    b = binding(ex, "k")
    queue = Queue(unique("q"), [b], channel=channel)
    queue.declare()
    b.unbind(queue)
    Producer(channel).publish("lost", exchange=ex, routing_key="k")
    assert queue.get() is None


def test_queue_bindings_keyword(channel: Any) -> None:
    ex = Exchange(unique("ex"))
    queue = Queue(unique("q"), bindings=[binding(ex, "k")], channel=channel)
    queue.declare()
    Producer(channel).publish("hi", exchange=ex, routing_key="k")
    assert queue.get(no_ack=True).payload == "hi"


# -- Queue -------------------------------------------------------------------

def test_queue_defaults() -> None:
    q = Queue("q")
    assert (q.name, q.routing_key, q.durable, q.exclusive, q.auto_delete, q.no_ack) == (
        "q", "", True, False, False, False)
    assert q.exchange == Exchange("")
    assert q.bindings == set()
    for attr in ("queue_arguments", "binding_arguments", "consumer_arguments", "alias",
                 "expires", "message_ttl", "max_length", "max_length_bytes", "max_priority"):
        assert getattr(q, attr) is None


def test_queue_exchange_given_by_name() -> None:
    q = Queue("q", "ex", "rk")
    assert q.exchange == Exchange("ex")
    assert q.routing_key == "rk"


def test_queue_exclusive_implies_auto_delete() -> None:
    assert Queue("q", exclusive=True).auto_delete is True


def test_queue_numeric_attrs_are_converted() -> None:
    q = Queue("q", expires="10", message_ttl=1, max_length="5", max_length_bytes=7.0,
              max_priority="9")
    assert q.expires == 10.0 and isinstance(q.expires, float)
    assert q.message_ttl == 1.0 and isinstance(q.message_ttl, float)
    assert (q.max_length, q.max_length_bytes, q.max_priority) == (5, 7, 9)


def test_queue_can_cache_declaration() -> None:
    assert Queue("q").can_cache_declaration
    assert not Queue("q", auto_delete=True).can_cache_declaration
    assert not Queue("q", queue_arguments={"x-expires": 10}).can_cache_declaration
    assert not Queue("q", expires=10).can_cache_declaration
    assert Queue("q", queue_arguments={"x-max-length": 10}).can_cache_declaration


def test_queue_equality() -> None:
    ex = Exchange("ex")
    q = Queue("q", ex, "rk", queue_arguments={"a": 1})
    assert q == Queue("q", Exchange("ex"), "rk", queue_arguments={"a": 1})
    assert hash(q) == hash(Queue("q"))
    assert q != Queue("q", Exchange("other"), "rk", queue_arguments={"a": 1})
    assert q != Queue("q", ex, "other", queue_arguments={"a": 1})
    assert q != Queue("q", ex, "rk", queue_arguments={"a": 2})
    assert q != Queue("q", ex, "rk", queue_arguments={"a": 1}, durable=False)
    assert q != Queue("q", ex, "rk", queue_arguments={"a": 1}, exclusive=True)
    assert q != Queue("q", ex, "rk", queue_arguments={"a": 1}, consumer_arguments={"b": 1})
    assert q != "q"
    assert Queue("q", [binding(ex, "a")]) != Queue("q", [binding(ex, "b")])
    assert Queue("q", [binding(ex, "a")]) == Queue("q", [binding(ex, "a")])


def test_queue_repr(channel: Any) -> None:
    q = Queue("q", Exchange("ex", "topic"), "a.#")
    assert repr(q) == "<unbound Queue q -> <unbound Exchange ex(topic)> -> a.#>"
    bound = q(channel)
    assert repr(bound) == (f"<Queue q -> <Exchange ex(topic) bound to chan:{channel.channel_id}>"
                           f" -> a.# bound to chan:{channel.channel_id}>")
    with_bindings = Queue("q", [binding(Exchange("ex"), "k")])
    assert repr(with_bindings) == "<unbound Queue q -> [ex->k]>"


def test_queue_bind_binds_its_exchange_too(channel: Any) -> None:
    ex = Exchange("ex")
    q = Queue("q", ex, "rk")
    bound = q(channel)
    assert bound.is_bound and bound.exchange.is_bound
    assert not q.is_bound and not ex.is_bound
    assert bound.exchange.channel is channel


def test_queue_declare_routes_messages(channel: Any) -> None:
    ex = Exchange(unique("ex"), "direct")
    q = Queue(unique("q"), ex, "rk", channel=channel)
    assert q.declare() == q.name
    assert exchange_exists(channel, ex.name)
    assert queue_exists(channel, q.name)
    Producer(channel, ex).publish({"n": 1}, routing_key="rk")
    Producer(channel, ex).publish({"n": 2}, routing_key="other")
    message = q.get()
    assert message.payload == {"n": 1}
    message.ack()
    assert q.get() is None


def test_queue_declare_on_explicit_channel() -> None:
    with Connection("memory://") as conn:
        channel = conn.channel()
        try:
            q = Queue(unique("q"), Exchange(unique("ex")), "rk")
            q.declare(channel=channel)
            assert queue_exists(channel, q.name)
            assert not q.is_bound
        finally:
            channel.close()


def test_queue_no_declare(channel: Any) -> None:
    q = Queue(unique("q"), Exchange(unique("ex")), "rk", no_declare=True, channel=channel)
    assert q.declare() == q.name
    assert not queue_exists(channel, q.name)
    assert not exchange_exists(channel, q.exchange.name)


def test_anonymous_queue_gets_a_name_and_on_declared(channel: Any) -> None:
    seen: list[tuple[Any, ...]] = []
    q = Queue("", on_declared=lambda *args: seen.append(args))
    bound = q.bind(channel)
    assert bound.on_declared is q.on_declared
    name = bound.declare()
    assert name and bound.name == name
    assert seen == [(name, 0, 0)]


def test_queue_declare_reports_message_count(channel: Any) -> None:
    q = Queue(unique("q"), channel=channel)
    q.declare()
    Producer(channel).publish("a", routing_key=q.name)
    Producer(channel).publish("b", routing_key=q.name)
    name, messages, consumers = q.queue_declare(passive=True)
    assert (name, messages, consumers) == (q.name, 2, 0)


def test_queue_passive_declare_of_missing_queue_fails(channel: Any) -> None:
    with pytest.raises(ChannelError):
        Queue(unique("q"), channel=channel).queue_declare(passive=True)


def test_queue_get_empty_returns_none(channel: Any) -> None:
    q = Queue(unique("q"), channel=channel)
    q.declare()
    assert q.get() is None


def test_queue_get_with_accept_refuses_other_content(channel: Any) -> None:
    q = Queue(unique("q"), channel=channel)
    q.declare()
    Producer(channel).publish({"a": 1}, routing_key=q.name, serializer="pickle")
    message = q.get(accept=["json"])
    with pytest.raises(ContentDisallowed):
        message.decode()
    message.reject()


def test_queue_get_accepts_listed_pickle(channel: Any) -> None:
    q = Queue(unique("q"), channel=channel)
    q.declare()
    Producer(channel).publish({"a": 1}, routing_key=q.name, serializer="pickle")
    message = q.get(accept=["pickle"])
    assert message.payload == {"a": 1}
    message.ack()


def test_queue_get_no_ack(channel: Any) -> None:
    q = Queue(unique("q"), channel=channel, no_ack=True)
    q.declare()
    Producer(channel).publish("x", routing_key=q.name)
    message = q.get()
    assert message.payload == "x"
    channel.basic_recover(requeue=True)
    assert q.get() is None


def test_queue_purge_and_delete(channel: Any) -> None:
    q = Queue(unique("q"), channel=channel)
    q.declare()
    assert q.purge() == 0
    for i in range(3):
        Producer(channel).publish(i, routing_key=q.name)
    assert q.purge() == 3
    assert q.get() is None
    q.delete()
    assert not queue_exists(channel, q.name)


def test_queue_unbind(channel: Any) -> None:
    ex = Exchange(unique("ex"))
    q = Queue(unique("q"), ex, "rk", channel=channel)
    q.declare()
    q.queue_unbind()
    Producer(channel, ex).publish("lost", routing_key="rk")
    assert q.get() is None
    q.bind_to(ex.name, "rk2")
    Producer(channel, ex).publish("found", routing_key="rk2")
    assert q.get(no_ack=True).payload == "found"
    q.unbind_from(ex, "rk2")
    Producer(channel, ex).publish("lost", routing_key="rk2")
    assert q.get() is None


def test_queue_consume_and_cancel(conn: Connection, channel: Any) -> None:
    q = Queue(unique("q"), channel=channel)
    q.declare()
    received: list[Any] = []
    tag = q.consume("my-tag", callback=received.append, no_ack=True)
    assert tag == "my-tag"
    Producer(channel).publish("a", routing_key=q.name)
    conn.drain_events(timeout=1)
    assert [m.body for m in received] == [b"a"]
    q.cancel("my-tag")
    Producer(channel).publish("b", routing_key=q.name)
    with pytest.raises(socket.timeout):
        conn.drain_events(timeout=0.05)
    assert q.get(no_ack=True).body == b"b"


def test_queue_from_dict() -> None:
    q = Queue.from_dict(
        "q", exchange="ex", exchange_type="topic", binding_key="a.*", durable=False,
        queue_durable=True, exchange_auto_delete=True, delivery_mode="transient",
        queue_arguments={"x-max-priority": 5}, exchange_arguments={"e": 1},
        binding_arguments={"b": 1}, consumer_arguments={"c": 1}, no_ack=True, exclusive=True,
    )
    assert (q.name, q.routing_key, q.durable, q.exclusive, q.auto_delete, q.no_ack) == (
        "q", "a.*", True, True, True, True)
    assert (q.queue_arguments, q.binding_arguments, q.consumer_arguments) == (
        {"x-max-priority": 5}, {"b": 1}, {"c": 1})
    ex = q.exchange
    assert (ex.name, ex.type, ex.durable, ex.auto_delete, ex.delivery_mode, ex.arguments) == (
        "ex", "topic", False, True, 1, {"e": 1})


def test_queue_from_dict_routing_key_alias() -> None:
    q = Queue.from_dict("q", exchange="ex", routing_key="rk")
    assert q.routing_key == "rk"
    assert q.exchange.type == "direct"


def test_queue_as_dict() -> None:
    ex = Exchange("ex", "fanout")
    q = Queue("q", ex, "rk", alias="a", max_priority=3)
    flat = q.as_dict()
    assert flat["exchange"] is ex
    assert (flat["name"], flat["routing_key"], flat["alias"], flat["max_priority"]) == (
        "q", "rk", "a", 3)
    deep = q.as_dict(recurse=True)
    assert deep["exchange"]["type"] == "fanout"
    with_bindings = Queue("q", [binding(ex, "k")]).as_dict(recurse=True)
    assert with_bindings["bindings"] == [
        {"exchange": ex.as_dict(recurse=True), "routing_key": "k", "arguments": None,
         "unbind_arguments": None}]


def test_queue_pickle_and_copy() -> None:
    q = Queue("q", Exchange("ex", "topic"), "a.#", durable=False, queue_arguments={"a": 1},
              bindings=[binding(Exchange("b"), "k")], alias="al", max_priority=4)
    for clone in (pickle.loads(pickle.dumps(q)), copy(q)):
        assert clone == q
        assert clone is not q
        assert clone.alias == "al" and clone.max_priority == 4
        assert clone.bindings == q.bindings


def test_queue_pickle_of_bound_queue_is_unbound(channel: Any) -> None:
    q = Queue("q", Exchange("ex"), "rk", channel=channel)
    clone = pickle.loads(pickle.dumps(q))
    assert clone == q
    assert not clone.is_bound
    assert not clone.exchange.is_bound
