"""Binding tables shared with real kombu 5.x: members, permanence and expiry.

kombu 5.7 writes a topic binding as ``routing_key + sep + regex + sep +
queue`` with its own regex (``^a\\.[^\\.]+\\.c$`` for ``a.*.c``), lists the
bindings of queues without ``x-expires`` in ``_kombu.binding_permanent.<exchange>``
and gives exchanges with ``x-expires`` queues a deadline in the sorted set
``_kombu.binding_deadlines``; its ``sweep_bindings`` deletes an overdue table
unless the permanent set lists a member.  This transport writes the same.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from helpers.kombu5 import kombu5_python
from helpers.processes import run_python
from kombu import Consumer, Exchange, Producer, Queue

pytestmark = pytest.mark.redis

SEP = "\x06\x16"

#: Real kombu: declares queues, publishes, sweeps; prints what it did as JSON.
KOMBU = textwrap.dedent("""
    import json, sys
    import kombu
    from kombu import Connection, Exchange, Producer, Queue
    spec = json.loads(sys.argv[1])
    conn = Connection(spec["url"], transport_options={"global_keyprefix": spec["prefix"]})
    channel = conn.default_channel
    for name, exchange, type_, rk, expires in spec.get("declare", []):
        Queue(name, Exchange(exchange, type_), routing_key=rk, expires=expires)(channel).declare()
    for exchange, type_, rk, body in spec.get("publish", []):
        ex = Exchange(exchange, type_)
        Producer(channel, exchange=ex).publish(body, routing_key=rk, declare=[ex])
    out = {"version": kombu.__version__}
    if spec.get("sweep"):
        out["swept"] = channel.sweep_bindings()
    conn.close()
    print(json.dumps(out))
""")


@pytest.fixture
def kombu(redis_url: str, connect: Any) -> Any:
    """``kombu(**spec)``: runs real kombu 5.x on the test database and prefix."""
    python = kombu5_python()

    def run(prefix: str | None = None, **spec: Any) -> dict[str, Any]:
        spec.update(url=redis_url, prefix=connect.prefix if prefix is None else prefix)
        out = run_python(KOMBU, json.dumps(spec), python=python).stdout
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        assert result["version"].startswith("5.")
        return result

    return run


def _member(rk: str, pattern: str, queue: str) -> bytes:
    return f"{rk}{SEP}{pattern}{SEP}{queue}".encode()


@pytest.mark.parametrize("rk,pattern,hit,miss", [
    ("a.*.c", r"^a\.[^\.]+\.c$", "a.b.c", "a.b.x.c"),
    ("a.#", r"^a\..*?$", "a.b.c", "b.a"),
])
def test_one_topic_member_for_kombu_and_us(kombu: Any, connect: Any, names: Any, raw: Any,
                                           rk: str, pattern: str, hit: str, miss: str) -> None:
    conn = connect()
    exchange = Exchange(names("tx"), "topic")
    queue = Queue(names("qt"), exchange, routing_key=rk)
    queue(conn.default_channel).declare()
    kombu(declare=[[queue.name, exchange.name, "topic", rk, None]])
    prefix = connect.prefix
    member = _member(rk, pattern, queue.name)
    assert raw.smembers(prefix + "_kombu.binding." + exchange.name) == {member}
    assert raw.smembers(prefix + "_kombu.binding_permanent." + exchange.name) == {member}
    kombu(publish=[[exchange.name, "topic", hit, "hit"], [exchange.name, "topic", miss, "miss"]])
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())]):
        conn.drain_events(timeout=5)
        with pytest.raises(TimeoutError):
            conn.drain_events(timeout=0.3)
    assert got == ["hit"]


def test_members_older_kombu_wrote_still_route_and_unbind(kombu: Any, connect: Any, names: Any,
                                                          raw: Any) -> None:
    conn = connect()
    channel = conn.default_channel
    prefix = connect.prefix
    exchange = Exchange(names("tx"), "topic")
    queue = Queue(names("qt"), exchange, routing_key="a.*.c")
    table = prefix + "_kombu.binding." + exchange.name
    legacy = _member("a.*.c", r"^a\..*?[^\.]\.c$", queue.name)  # kombu before 5.x's fix
    raw.sadd(table, legacy)
    # Routed by this transport and by kombu 5.x: once each, though two members.
    producer = Producer(channel, exchange=exchange)
    producer.publish("ours", routing_key="a.b.c", declare=[exchange])
    kombu(publish=[[exchange.name, "topic", "a.b.c", "kombu's"]])
    assert raw.llen(prefix + queue.name) == 2
    queue(channel).declare()
    assert raw.smembers(table) == {legacy, _member("a.*.c", r"^a\.[^\.]+\.c$", queue.name)}
    producer.publish("once", routing_key="a.b.c")
    assert raw.llen(prefix + queue.name) == 3
    queue(channel).unbind_from(exchange, routing_key="a.*.c")
    assert raw.smembers(table) == set()
    assert raw.smembers(prefix + "_kombu.binding_permanent." + exchange.name) == set()
    producer.publish("unbound", routing_key="a.b.c")
    assert raw.llen(prefix + queue.name) == 3
    raw.sadd(table, legacy)
    queue(channel).declare()
    queue(channel).delete()
    assert raw.exists(table) == 0


def test_kombus_sweep_keeps_our_permanent_bindings(kombu: Any, connect: Any, names: Any,
                                                    raw: Any) -> None:
    conn = connect()
    prefix = connect.prefix
    exchange = Exchange(names("x"), "direct")
    ours = Queue(names("qp"), exchange, routing_key="p")
    ours(conn.default_channel).declare()
    # kombu binds an expiring queue to the same exchange: a deadline for it,
    # which then passes.
    expiring = names("qe")
    kombu(declare=[[expiring, exchange.name, "direct", "e", 5]])
    deadlines = prefix + "_kombu.binding_deadlines"
    assert raw.zscore(deadlines, exchange.name) is not None
    raw.zadd(deadlines, {exchange.name: 0})
    assert kombu(sweep=True)["swept"] == 1
    assert raw.zscore(deadlines, exchange.name) is None
    table = raw.smembers(prefix + "_kombu.binding." + exchange.name)
    assert _member("p", "", ours.name) in table
    kombu(publish=[[exchange.name, "direct", "p", "routed"]])
    assert raw.llen(prefix + ours.name) == 1


def test_an_overdue_expiring_binding_is_swept(kombu: Any, connect: Any, names: Any,
                                              raw: Any) -> None:
    conn = connect()
    prefix = connect.prefix
    exchange = Exchange(names("x"), "direct")
    queue = Queue(names("qx"), exchange, routing_key="k", expires=5)
    queue(conn.default_channel).declare()
    table = prefix + "_kombu.binding." + exchange.name
    deadlines = prefix + "_kombu.binding_deadlines"
    assert raw.smembers(table) == {_member("k", "", queue.name)}
    assert raw.exists(prefix + "_kombu.binding_permanent." + exchange.name) == 0
    seconds, micros = raw.time()
    now_ms = seconds * 1000 + micros // 1000
    # kombu's lifetime: max(2 * x-expires, one hour), by the server's clock.
    assert abs(raw.zscore(deadlines, exchange.name) - (now_ms + 3_600_000)) < 5_000
    raw.zadd(deadlines, {exchange.name: 0})
    assert kombu(sweep=True)["swept"] == 1
    assert raw.exists(table) == 0
    Producer(conn, exchange=exchange).publish("m", routing_key="k")
    assert raw.llen(prefix + queue.name) == 0


def test_same_binding_keys_as_kombu(kombu: Any, connect: Any, names: Any, raw: Any) -> None:
    """Ours under one prefix, kombu's under another: the same keys and contents."""
    theirs = names("p2") + ":"
    conn = connect()
    ours = connect.prefix
    exchange, topic = names("x"), names("t")
    declared = [[names("qp"), exchange, "direct", "p", None],
                [names("qe"), exchange, "direct", "e", 30],
                [names("qt"), topic, "topic", "a.*.#", None]]
    for name, ex, type_, rk, expires in declared:
        Queue(name, Exchange(ex, type_), routing_key=rk,
              expires=expires)(conn.default_channel).declare()
    kombu(prefix=theirs, declare=declared)

    def dump(prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in raw.scan_iter(match=prefix + "*"):
            name = key.decode()[len(prefix):]
            kind = raw.type(key).decode()
            if kind == "set":
                out[name] = (kind, raw.smembers(key))
            elif kind == "zset":
                out[name] = (kind, {m: round(s / 60_000) for m, s in raw.zrange(key, 0, -1,
                                                                                 withscores=True)})
            else:
                out[name] = (kind, None)
        return out

    mine = dump(ours)
    assert mine == dump(theirs)
    assert set(mine) == {f"_kombu.binding.{exchange}", f"_kombu.binding_permanent.{exchange}",
                         f"_kombu.binding.{topic}", f"_kombu.binding_permanent.{topic}",
                         "_kombu.binding_deadlines"}


def test_consuming_refreshes_binding_deadlines_and_sweeps(connect: Any, names: Any,
                                                          raw: Any) -> None:
    conn = connect()
    prefix = connect.prefix
    exchange = Exchange(names("x"), "direct")
    queue = Queue(names("qx"), exchange, routing_key="k", expires=30)
    queue(conn.default_channel).declare()
    deadlines = prefix + "_kombu.binding_deadlines"
    seconds, _ = raw.time()
    raw.zadd(deadlines, {exchange.name: seconds * 1000 + 60_000})  # close to due
    # An exchange nobody refreshed, whose table has no permanent member.
    stale = names("stale")
    raw.sadd(prefix + "_kombu.binding." + stale, _member("k", "", names("gone")))
    raw.zadd(deadlines, {stale: 0})
    with Consumer(conn, [queue], callbacks=[lambda b, m: m.ack()]):
        with pytest.raises(TimeoutError):
            conn.drain_events(timeout=0.3)
    seconds, _ = raw.time()
    assert raw.zscore(deadlines, exchange.name) > seconds * 1000 + 3_500_000
    assert raw.exists(prefix + "_kombu.binding." + stale) == 0
    assert raw.zscore(deadlines, stale) is None
    assert raw.exists(prefix + "_kombu.binding." + exchange.name) == 1
