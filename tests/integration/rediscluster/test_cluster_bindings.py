"""Binding tables of x-expires queues on a real Redis Cluster expire as on one
Redis: nobody consuming, the table goes; a consumer keeps it; a queue without
x-expires keeps it for good.

kombu's floor for a binding table's lifetime is an hour
(``kombu_redis.bindings.MIN_BINDING_TTL``); the test lowers it, so a table
lives twice its queue's x-expires.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable

import pytest
from helpers import wait_until
from helpers.redis_cluster import LocalCluster
from kombu import Connection, Consumer, Exchange, Queue

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(60)]

EXPIRES = 1.0  # seconds (x-expires 1000 ms): the table lives 2 s after a refresh


def test_x_expires_binding_tables_expire_unless_consumed_or_permanent(
        redis_cluster: LocalCluster, unique: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import kombu_redis.bindings
    from kombu_redis.cluster_keys import ClusterKeySchema
    from redis.cluster import ClusterNode, RedisCluster

    monkeypatch.setattr(kombu_redis.bindings, "MIN_BINDING_TTL", 0)
    idle, consumed, mixed = (Exchange(unique("cbx"), type="direct") for _ in range(3))
    queues = {
        "idle": Queue(unique("cbq"), idle, routing_key="a", expires=EXPIRES),
        "consumed": Queue(unique("cbq"), consumed, routing_key="a", expires=EXPIRES),
        "mixed-expiring": Queue(unique("cbq"), mixed, routing_key="a", expires=EXPIRES),
        "mixed-permanent": Queue(unique("cbq"), mixed, routing_key="a"),
    }
    keys = ClusterKeySchema()
    table = {x.name: keys.binding_key(x.name) for x in (idle, consumed, mixed)}
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                         for n in redis_cluster.live])
    got: list[Any] = []
    try:
        with Connection(redis_cluster.url(),
                        transport_options={"unacked_restore_interval": 0.2}) as conn:
            channel = conn.default_channel
            for queue in queues.values():
                queue(channel).declare()
            ttl_ms = int(EXPIRES * 1000) * 2
            assert 0 < client.pttl(table[idle.name]) <= ttl_ms
            assert 0 < client.pttl(table[consumed.name]) <= ttl_ms
            assert client.pttl(table[mixed.name]) == -1, "a permanent member keeps the table"
            assert client.scard(table[mixed.name]) == 2
            with Consumer(conn, [queues["consumed"]], callbacks=[lambda b, m: got.append(b)],
                          accept=["json"]):

                def idle_table_gone() -> bool:
                    try:
                        conn.drain_events(timeout=0.2)
                    except socket.timeout:
                        pass
                    return not client.exists(table[idle.name])

                wait_until(idle_table_gone, timeout=15)
                # Consumed all along: refreshed, its table is there and routes.
                conn.Producer().publish({"n": 1}, exchange=consumed, routing_key="a")
                deadline = time.monotonic() + 5
                while not got and time.monotonic() < deadline:
                    try:
                        conn.drain_events(timeout=0.2)
                    except socket.timeout:
                        pass
            assert got == [{"n": 1}]
            assert client.exists(table[consumed.name])
            assert client.pttl(table[mixed.name]) == -1
            assert client.scard(table[mixed.name]) == 2
            # Nothing routes through the expired table any more.
            conn.Producer().publish({"n": 2}, exchange=idle, routing_key="a")
            assert client.llen(keys.queue_key(queues["idle"].name)) == 0
    finally:
        client.close()
