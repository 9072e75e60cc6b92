"""kombu.pidbox: Mailbox and Node on the in-process memory transport."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import unique_name, wait_until
from helpers.pidbox import NodeThread
from kombu import Connection, Consumer, Exchange, Queue, pools
from kombu.clocks import LamportClock
from kombu.pidbox import Mailbox, Node
from kombu.utils.functional import lazy

URL = "memory://"


def ping(state: Any, **kwargs: Any) -> dict[str, str]:
    return {"ok": "pong"}


def add(state: Any, x: int, y: int) -> int:
    return x + y


def boom(state: Any) -> None:
    raise RuntimeError("handler failed")


def record(state: Any, **kwargs: Any) -> str:
    state.append(kwargs)
    return "recorded"


HANDLERS = {"ping": ping, "add": add, "boom": boom, "record": record}


@pytest.fixture
def ns() -> str:
    return unique_name("pbx")


@pytest.fixture
def conn() -> Iterator[Connection]:
    with Connection(URL) as connection:
        yield connection


# -- names and settings ---------------------------------------------------------

def test_exchanges_and_queue_names(ns: str) -> None:
    mailbox = Mailbox(ns, type="fanout")
    assert mailbox.exchange is not None and mailbox.reply_exchange is not None
    assert mailbox.exchange.name == f"{ns}.pidbox"
    assert mailbox.exchange.type == "fanout"
    assert mailbox.exchange.durable is False
    assert mailbox.exchange.delivery_mode == Exchange.TRANSIENT_DELIVERY_MODE
    assert mailbox.reply_exchange.name == f"reply.{ns}.pidbox"
    assert mailbox.reply_exchange.type == "direct"
    queue = mailbox.get_queue("node1")
    assert queue.name == f"node1.{ns}.pidbox"
    assert queue.exchange is mailbox.exchange
    assert (queue.exclusive, queue.durable, queue.auto_delete) == (True, False, True)
    assert Mailbox(ns).type == "direct"


def test_reply_queue_and_oid(ns: str) -> None:
    mailbox = Mailbox(ns, reply_queue_ttl=5.0, reply_queue_expires=20.0, queue_ttl=3.0,
                      queue_expires=60.0)
    oid = mailbox.oid
    assert oid == mailbox.oid  # same instance, same thread
    assert oid != Mailbox(ns).oid
    other: list[str] = []
    t = threading.Thread(target=lambda: other.append(mailbox.oid))
    t.start()
    t.join(10)
    assert other and other[0] != oid  # per thread
    queue = mailbox.get_reply_queue()
    assert queue.name == f"{oid}.reply.{ns}.pidbox"
    assert queue.routing_key == oid
    assert queue.exchange is mailbox.reply_exchange
    assert (queue.expires, queue.message_ttl) == (20.0, 5.0)
    assert mailbox.reply_queue is mailbox.reply_queue  # cached
    node_queue = mailbox.get_queue("n")
    assert (node_queue.expires, node_queue.message_ttl) == (60.0, 3.0)


def test_defaults_and_settings(ns: str) -> None:
    mailbox = Mailbox(ns)
    assert mailbox.accept == ["json"]
    assert mailbox.serializer is None
    assert mailbox.reply_queue_expires == 10.0
    assert (mailbox.queue_ttl, mailbox.queue_expires, mailbox.reply_queue_ttl) == (None,) * 3
    assert (mailbox.queue_durable, mailbox.queue_exclusive) == (False, True)
    assert isinstance(mailbox.clock, LamportClock)
    assert mailbox.producer_pool is None
    custom = Mailbox(ns, accept=["json", "msgpack"], serializer="json",
                     queue_durable=True, queue_exclusive=False)
    assert custom.accept == ["json", "msgpack"] and custom.serializer == "json"
    durable_queue = custom.get_queue("n")
    assert (durable_queue.durable, durable_queue.exclusive, durable_queue.auto_delete) == (
        True, False, False)


def test_bad_settings_are_refused(ns: str) -> None:
    with pytest.raises(ValueError, match="contradict each other"):
        Mailbox(ns, queue_durable=True, queue_exclusive=True)
    with pytest.raises(ValueError, match="namespace"):
        Mailbox("")
    with pytest.raises(ValueError, match="exchange type"):
        Mailbox(ns, type="")
    with pytest.raises(TypeError, match="Mailbox.Node"):
        Node("host")


def test_call_binds_a_copy(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns)
    bound = mailbox(conn)
    assert bound is not mailbox
    assert bound.connection is conn and mailbox.connection is None
    assert bound.clock is mailbox.clock
    clone = bound.clone()
    assert clone is not bound and clone.connection is conn and clone.namespace == ns


def test_unbound_mailbox_says_how_to_bind(ns: str) -> None:
    with pytest.raises(RuntimeError, match=r"mailbox\(connection\)"):
        Mailbox(ns).cast(["n"], "ping")


def test_producer_pool_is_lazy_and_cached(ns: str) -> None:
    evaluated: list[int] = []
    mailbox = Mailbox(ns, producer_pool=lazy(lambda: evaluated.append(1) or "the-pool"))
    assert evaluated == []
    assert mailbox.producer_pool == "the-pool"
    assert mailbox.producer_pool == "the-pool"
    assert evaluated == [1]
    del mailbox.producer_pool
    assert mailbox.producer_pool == "the-pool"
    assert evaluated == [1, 1]


# -- Node without a broker -----------------------------------------------------------

def test_node_handlers_and_dispatch(ns: str) -> None:
    mailbox = Mailbox(ns)
    seen: list[Any] = []
    node = mailbox.Node("n1", state=seen, handlers=dict(HANDLERS))

    @node.handler
    def double(state: Any, x: int) -> int:
        return 2 * x

    assert node.handlers is not None and node.handlers["double"] is double
    assert node.hostname == "n1" and node.state is seen
    assert node.dispatch("double", {"x": 4}) == 8
    assert node.handle_cast("add", {"x": 1, "y": 2}) == 3
    assert node.handle_call("record", {"k": 1}) == "recorded"
    assert seen == [{"k": 1}]
    err = node.dispatch("boom")
    assert err == {"error": "RuntimeError('handler failed')"}
    unknown = node.dispatch("nope")
    assert unknown == {"error": "KeyError('nope')"}
    with pytest.raises(KeyError):
        node.handle("nope")


def test_node_default_hostname(ns: str) -> None:
    import socket

    assert Mailbox(ns).Node().hostname == socket.gethostname()


def test_handle_message_addressing(ns: str) -> None:
    mailbox = Mailbox(ns)
    node = mailbox.Node("worker1@host", handlers=dict(HANDLERS))
    body = {"method": "add", "arguments": {"x": 2, "y": 3}}
    assert node.handle_message({**body, "destination": ["worker1@host"]}) == 5
    assert node.handle_message({**body, "destination": ["other@host"]}) is None
    assert node.handle_message({**body, "pattern": "worker*", "matcher": "glob"}) == 5
    assert node.handle_message({**body, "pattern": "beat*", "matcher": "glob"}) is None
    assert node.handle_message({**body, "pattern": r"worker\d@", "matcher": "pcre"}) == 5
    assert node.handle_message({**body, "destination": None, "pattern": None}) == 5
    assert node.dispatch_from_message == node.handle_message


def test_handle_message_adjusts_the_clock(ns: str) -> None:
    mailbox = Mailbox(ns)
    node = mailbox.Node("n", handlers=dict(HANDLERS))

    class FakeMessage:  # only headers are read
        headers = {"clock": 41}

    node.handle_message({"method": "ping", "arguments": {}}, FakeMessage())
    assert mailbox.clock.value == 42


def test_broadcast_validates_arguments(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns)(conn)
    with pytest.raises(ValueError, match="destination must be a list/tuple"):
        mailbox._broadcast("ping", destination="node1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern and matcher must be strings"):
        mailbox._broadcast("ping", pattern=["x"], matcher="glob")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern and matcher must be strings"):
        mailbox._broadcast("ping", pattern="x", matcher=len)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="command"):
        mailbox._broadcast("")


# -- over the memory transport -----------------------------------------------------------

def test_wire_format_of_a_request(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns, type="fanout")(conn)
    spy = Queue(unique_name("spy"), mailbox.exchange)
    got: list[Any] = []
    with Consumer(conn.channel(), [spy], callbacks=[lambda b, m: got.append((b, m))]):
        before = time.time()
        mailbox.cast(["n1"], "record", {"a": 1})
        conn.drain_events(timeout=2)
    body, message = got[0]
    assert body == {"method": "record", "arguments": {"a": 1}, "destination": ["n1"],
                    "pattern": None, "matcher": None}
    assert message.headers["clock"] == mailbox.clock.value
    # as kombu: a cast goes through _broadcast's default timeout of 1 s
    assert before + 1 <= message.headers["expires"] <= time.time() + 1
    assert message.content_type == "application/json"
    assert message.delivery_info["exchange"] == f"{ns}.pidbox"


def test_multi_call_and_call(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns, type="fanout")
    with NodeThread(URL, mailbox, "n1", HANDLERS), NodeThread(URL, mailbox, "n2", HANDLERS):
        bound = mailbox(conn)
        replies = bound.multi_call("ping", timeout=5, limit=2)
        assert sorted(replies, key=str) == [{"n1": {"ok": "pong"}}, {"n2": {"ok": "pong"}}]
        assert bound.call(["n2"], "add", {"x": 20, "y": 22}, timeout=5) == [{"n2": 42}]
        errors = bound.call(["n1"], "boom", timeout=5)
        assert errors == [{"n1": {"error": "RuntimeError('handler failed')"}}]
        seen: list[Any] = []
        replies = bound.multi_call("add", {"x": 1, "y": 1}, timeout=5, limit=2,
                                   callback=seen.append)
        assert sorted(seen, key=str) == sorted(replies, key=str)
        assert len(replies) == 2


def test_call_returns_what_arrived_by_the_timeout(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns, type="fanout")
    with NodeThread(URL, mailbox, "here", HANDLERS):
        started = time.monotonic()
        replies = mailbox(conn).call(["here", "gone"], "ping", timeout=1.0)
        assert replies == [{"here": {"ok": "pong"}}]
        assert time.monotonic() - started < 30  # bounded (not a speed check)


def test_cast_and_abcast_run_handlers(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns, type="fanout")
    state1: list[Any] = []
    state2: list[Any] = []
    with NodeThread(URL, mailbox, "n1", HANDLERS, state=state1), \
            NodeThread(URL, mailbox, "n2", HANDLERS, state=state2):
        bound = mailbox(conn)
        assert bound.cast(["n1"], "record", {"v": 1}) is None
        bound.abcast("record", {"v": 2})
        wait_until(lambda: len(state1) == 2 and len(state2) == 1, timeout=10,
                   message="casts delivered")
        assert state1 == [{"v": 1}, {"v": 2}]
        assert state2 == [{"v": 2}]


def test_pattern_and_matcher(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns, type="fanout")
    with NodeThread(URL, mailbox, "worker1@a", HANDLERS), \
            NodeThread(URL, mailbox, "beat@a", HANDLERS):
        bound = mailbox(conn)
        assert bound._broadcast("ping", reply=True, timeout=1.0, pattern="worker*",
                                matcher="glob") == [{"worker1@a": {"ok": "pong"}}]
        assert bound._broadcast("ping", reply=True, timeout=1.0, pattern="^beat",
                                matcher="pcre") == [{"beat@a": {"ok": "pong"}}]


def test_direct_mailbox(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns, type="direct")
    with NodeThread(URL, mailbox, "d1", HANDLERS):
        assert mailbox(conn).call(["d1"], "add", {"x": 1, "y": 2}, timeout=5) == [{"d1": 3}]


def test_clocks_travel_both_ways(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns, type="fanout")
    node_mailbox = Mailbox(ns, type="fanout", clock=LamportClock(initial_value=1000))
    with NodeThread(URL, node_mailbox, "c1", HANDLERS):
        client = mailbox(conn)
        client.clock.value = 5000
        client.call(["c1"], "ping", timeout=5)
        # the node moved past the request's clock, then forwarded for the reply
        assert node_mailbox.clock.value > 5000
        assert client.clock.value > node_mailbox.clock.value - 1


def test_unclaimed_replies_are_kept_for_their_ticket(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns)(conn)
    chan = conn.default_channel
    # A reply to another ticket arrives while collecting ours.
    from kombu.common import maybe_declare

    maybe_declare(mailbox.reply_queue(chan))
    mailbox._publish_reply({"x": 1}, mailbox.reply_exchange.name,  # type: ignore[union-attr]
                           mailbox.reply_queue.routing_key, "other-ticket", channel=chan)
    mailbox._publish_reply({"x": 2}, mailbox.reply_exchange.name,  # type: ignore[union-attr]
                           mailbox.reply_queue.routing_key, "mine", channel=chan)
    assert mailbox._collect("mine", limit=1, timeout=2) == [{"x": 2}]
    assert list(mailbox.unclaimed["other-ticket"]) == [{"x": 1}]
    assert mailbox._collect("other-ticket", limit=1, timeout=0.2) == [{"x": 1}]
    assert "other-ticket" not in mailbox.unclaimed


def test_expired_replies_are_dropped(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns)(conn)
    chan = conn.default_channel
    from kombu import Producer
    from kombu.common import maybe_declare

    maybe_declare(mailbox.reply_queue(chan))
    producer = Producer(chan)
    for expires, value in ((time.time() - 10, "old"), (time.time() + 60, "fresh")):
        producer.publish({"v": value}, exchange=mailbox.reply_exchange,
                         routing_key=mailbox.reply_queue.routing_key,
                         headers={"ticket": "t", "clock": 1, "expires": expires})
    assert mailbox._collect("t", limit=2, timeout=0.5) == [{"v": "fresh"}]


def test_reply_to_a_vanished_queue_is_dropped(ns: str, conn: Connection) -> None:
    mailbox = Mailbox(ns)(conn)
    # No queue is bound to the reply exchange: the memory transport cannot
    # route the reply; the node must not fail.
    mailbox._publish_reply({"x": 1}, f"reply.{ns}.pidbox", "nobody", "t",
                           channel=conn.default_channel)


def test_producer_pool_publishes(ns: str, conn: Connection) -> None:
    used: list[int] = []

    def pool() -> Any:
        used.append(1)
        return pools.producers[conn]

    mailbox = Mailbox(ns, type="fanout", producer_pool=lazy(pool))
    with NodeThread(URL, mailbox, "p1", HANDLERS):
        assert mailbox(conn).call(["p1"], "ping", timeout=5) == [{"p1": {"ok": "pong"}}]
    assert used

