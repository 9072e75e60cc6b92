"""Transport options on a real Redis Cluster, as on one Redis: ``global_keyprefix``
(every key of a queue still in one slot), ``ack_emulation`` off,
and ``queue_order_strategy`` over queues on different masters.  (The
conformance kit, run on the cluster too, covers content types not accepted,
priorities, requeues and the rest of the messaging API.)
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from helpers.draining import drain_until
from helpers.redis_cluster import LocalCluster, names_on_every_master
from kombu import Connection, Consumer, Producer, Queue

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(120)]


def cluster_client(cluster: LocalCluster) -> Any:
    from redis.cluster import ClusterNode, RedisCluster

    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster.live])


def keys_naming(client: Any, text: str) -> set[str]:
    keys: set[str] = set()
    for node in client.get_primaries():
        keys.update(k.decode() for k in client.scan_iter(match=f"*{text}*", target_nodes=node,
                                                         count=1000))
    return keys


def test_global_keyprefix_keeps_each_queue_in_one_slot(redis_cluster: LocalCluster,
                                                       unique: Callable[..., str]) -> None:
    """With the prefix, every key of a queue (its list, and the records of the
    messages a consumer holds) starts with it and sits in one slot."""
    prefix = unique("gp") + ":"
    names = list(names_on_every_master(redis_cluster, lambda: unique("cg"), 1))
    held: list[Any] = []
    options = {"global_keyprefix": prefix}
    client = cluster_client(redis_cluster)
    try:
        with Connection(redis_cluster.url(), transport_options=options) as conn:
            producer = Producer(conn)
            for name in names:
                for i in range(5):
                    producer.publish({"q": name, "i": i}, routing_key=name,
                                     declare=[Queue(name)] if i == 0 else None)
                assert client.llen(f"{prefix}{{{name}}}") == 5
            with Consumer(conn, [Queue(n) for n in names], prefetch_count=15,
                          callbacks=[lambda b, m: held.append(m)]):
                drain_until(conn, held, 15, timeout=20)
                for name in names:
                    keys = keys_naming(client, name)
                    assert f"{prefix}unacked.{{{name}}}" in keys, sorted(keys)
                    assert f"{prefix}unacked_index.{{{name}}}" in keys, sorted(keys)
                    assert all(k.startswith(prefix) for k in keys), sorted(keys)
                    assert len({client.keyslot(k) for k in keys}) == 1, sorted(keys)
                    assert client.hlen(f"{prefix}unacked.{{{name}}}") == 5
                for message in held:
                    message.ack()
            for name in names:
                assert client.hlen(f"{prefix}unacked.{{{name}}}") == 0
    finally:
        client.close()
    assert sorted((m.payload["q"], m.payload["i"]) for m in held) == sorted(
        (n, i) for n in names for i in range(5))


def test_without_ack_emulation_nothing_is_recorded(redis_cluster: LocalCluster,
                                                   unique: Callable[..., str]) -> None:
    names = list(names_on_every_master(redis_cluster, lambda: unique("cne"), 1))
    got: list[Any] = []
    with Connection(redis_cluster.url(), transport_options={"ack_emulation": False}) as conn:
        with Consumer(conn, [Queue(n) for n in names],
                      callbacks=[lambda b, m: (got.append(b), m.ack())]):
            producer = Producer(conn)
            for name in names:
                for i in range(4):
                    producer.publish({"q": name, "i": i}, routing_key=name)
            drain_until(conn, got, 12, timeout=20)
    client = cluster_client(redis_cluster)
    try:
        for name in names:
            assert not client.exists(f"unacked.{{{name}}}", f"unacked_index.{{{name}}}")
            assert client.llen("{" + name + "}") == 0
    finally:
        client.close()
    assert len(got) == 12


@pytest.mark.parametrize("strategy", ["round_robin", "priority"])
def test_queue_order_strategy_over_masters(redis_cluster: LocalCluster,
                                           unique: Callable[..., str], strategy: str) -> None:
    """Three queues on three masters, 12 messages each, prefetch 3 and acks one
    by one: round robin serves each queue a share of every window; priority
    drains the queues in the order given."""
    names = list(names_on_every_master(redis_cluster, lambda: unique("cqo"), 1))
    order: list[str] = []
    url = redis_cluster.url()
    with Connection(url) as pub:
        producer = Producer(pub)
        for name in names:
            for i in range(12):
                producer.publish({"q": name, "i": i}, routing_key=name,
                                 declare=[Queue(name)] if i == 0 else None)
    with Connection(url, transport_options={"queue_order_strategy": strategy}) as conn:
        with Consumer(conn, [Queue(n) for n in names], prefetch_count=3,
                      callbacks=[lambda b, m: (order.append(b["q"]), m.ack())]):
            drain_until(conn, order, 36, timeout=30)
    if strategy == "priority":
        assert order == [n for n in names for _ in range(12)]
    else:
        for start in range(0, 36, 9):
            window = order[start:start + 9]
            assert {window.count(n) for n in names} == {3}, order
