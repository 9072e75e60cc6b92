"""kombu-redis on a real Redis Cluster under the event loop (``kombu.asynchronous.Hub``).

A Connection registered with a real Hub, as Celery's worker registers it: one
reader per master that serves a consumed queue (its tracking waiter), plus the
fanout waiter; the hub is driven with ``hub.run_once()`` until a condition
holds or a deadline passes.  A master killed under the hub is in
test_cluster_failover.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.redis_cluster import LocalCluster, names_on_every_master
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.asynchronous import Hub

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(120)]


@pytest.fixture
def hub() -> Iterator[Hub]:
    loop = Hub()
    yield loop
    loop.close()


def run_until(hub: Hub, done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the hub did not get there in time"
        hub.run_once()


def run_for(hub: Hub, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        hub.run_once()


def spread_names(cluster: LocalCluster, unique: Callable[..., str], per_master: int,
                 kind: str = "ch") -> list[str]:
    """Queue names, ``per_master`` on each master."""
    return list(names_on_every_master(cluster, lambda: unique(kind), per_master))


def records_left(cluster: LocalCluster, names: list[str]) -> int:
    from kombu_redis.cluster_keys import ClusterKeySchema
    from redis.cluster import ClusterNode, RedisCluster

    keys = ClusterKeySchema()
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster.live])
    try:
        total = 0
        for name in names:
            unacked, index, _ = keys.record_keys(name)
            total += int(client.hlen(unacked)) + int(client.zcard(index))
            total += sum(int(client.llen(k)) for k in keys.queue_keys(name))
        return total
    finally:
        client.close()


def test_every_master_is_a_reader_and_wakes_the_hub(
        hub: Hub, redis_cluster: LocalCluster, unique: Callable[..., str]) -> None:
    """Six queues on three masters: the hub reads one tracking waiter per master;
    messages published while it waits wake it (exact counts, never more held
    than the prefetch count, no record left once acked)."""
    names = spread_names(redis_cluster, unique, 2)
    url = redis_cluster.url()
    got: list[Any] = []
    held_max = [0]
    with Connection(url) as conn, Connection(url) as pub:
        conn.transport.register_with_event_loop(conn.connection, hub)
        channel = conn.default_channel

        def on_message(body: Any, message: Any) -> None:
            got.append((body["q"], body["i"]))
            held_max[0] = max(held_max[0], len(channel.held_tags()))
            message.ack()

        queues = [Queue(n) for n in names]
        with Consumer(conn, queues, callbacks=[on_message], prefetch_count=10):
            run_for(hub, 0.3)  # armed: every master tracks its queues
            node_waiters = list(channel.fetcher.waiters.values())
            assert len(node_waiters) == 3
            assert all(w.connected for w in node_waiters)
            assert {w.sock.fileno() for w in node_waiters} <= set(hub.readers)
            producer = Producer(pub)
            for i in range(50):
                for name in names:
                    producer.publish({"q": name, "i": i}, routing_key=name)
            run_until(hub, lambda: len(got) >= 300)
            run_for(hub, 0.3)
    assert sorted(got) == sorted((n, i) for n in names for i in range(50))
    assert held_max[0] <= 10
    assert records_left(redis_cluster, names) == 0


def test_fanout_and_direct_under_the_hub(hub: Hub, redis_cluster: LocalCluster,
                                         unique: Callable[..., str]) -> None:
    names = spread_names(redis_cluster, unique, 1, "chf")
    fan = Exchange(unique("cfx"), type="fanout")
    url = redis_cluster.url()
    got: list[tuple[str, Any]] = []
    with Connection(url) as conn, Connection(url) as pub:
        conn.transport.register_with_event_loop(conn.connection, hub)

        def on_message(body: Any, message: Any) -> None:
            got.append((message.delivery_info["routing_key"], body))
            message.ack()

        queues = [Queue(names[0], fan), Queue(names[1], fan), Queue(names[2])]
        with Consumer(conn, queues, callbacks=[on_message], prefetch_count=20):
            run_for(hub, 0.3)
            producer = Producer(pub)
            fan(pub.default_channel).declare()  # a fanout exchange this connection knows
            for i in range(5):
                producer.publish(i, exchange=fan, routing_key="")
                producer.publish(100 + i, routing_key=names[2])
            run_until(hub, lambda: len(got) >= 15)
            run_for(hub, 0.3)
    assert sorted(b for _, b in got) == sorted([*range(5), *range(5), *range(100, 105)])
