"""kombu-redis rides out a master SIGKILL and a reshard on a real Redis Cluster.

A producer thread publishes 2000 messages over four queues spread across the
masters while a consumer consumes them on its own Connection; in the middle
a master is SIGKILLed (its replica takes over) or slots move with
``redis-cli --cluster reshard``.  Every message arrives; a message that
arrives twice is either flagged redelivered or was published again after a
publish that failed (the producer cannot know if the first one landed).

These tests change the cluster (a master fewer, slots moved), so they run
after the others of this directory (the file name sorts last).
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from typing import Any, Callable

import pytest
from helpers.redis_cluster import LocalCluster
from kombu import Connection, Consumer, Producer, Queue

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(150)]

TOTAL = 2000
OPTIONS = {"visibility_timeout": 4, "unacked_restore_interval": 0.5,
           "replica_wait": 1, "replica_wait_timeout": 2.0}


def slot_owner(cluster: LocalCluster) -> Callable[[str], int]:
    from redis.cluster import ClusterNode, RedisCluster

    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster.live])
    owners = {name: int(client.get_node_from_key("{" + name + "}").port) for name in ()}

    def owner(name: str) -> int:
        if name not in owners:
            owners[name] = int(client.get_node_from_key("{" + name + "}").port)
        return owners[name]

    return owner


class Producer2000(threading.Thread):
    """Publishes TOTAL messages round robin over ``names``, retrying on the same
    Connection; calls ``fault()`` once ``at`` messages are out."""

    def __init__(self, url: str, names: list[str], at: int, fault: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.url, self.names, self.at, self.fault = url, names, at, fault
        self.retried: set[int] = set()
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with Connection(self.url, transport_options=OPTIONS) as conn:
                producer = Producer(conn)
                for i in range(TOTAL):
                    if i == self.at:
                        self.fault()
                    deadline = time.monotonic() + 60
                    while True:
                        try:
                            producer.publish({"i": i}, routing_key=self.names[i % len(self.names)])
                            break
                        except conn.recoverable_connection_errors:
                            if time.monotonic() > deadline:
                                raise
                            self.retried.add(i)
                            time.sleep(0.1)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.done.set()


def consume_all(url: str, names: list[str], producer: Producer2000,
                timeout: float = 100) -> tuple[collections.Counter[int], set[int], int]:
    """Consume until every message arrived; (counts, redelivered ids, errors ridden out)."""
    counts: collections.Counter[int] = collections.Counter()
    redelivered: set[int] = set()
    errors = 0

    def on_message(body: Any, message: Any) -> None:
        counts[body["i"]] += 1
        if message.delivery_info.get("redelivered"):
            redelivered.add(body["i"])
        message.ack()

    deadline = time.monotonic() + timeout
    with Connection(url, transport_options=OPTIONS) as conn:
        with Consumer(conn, [Queue(n) for n in names], callbacks=[on_message],
                      prefetch_count=50):
            while len(counts) < TOTAL and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
                except conn.recoverable_connection_errors:
                    errors += 1  # the same Connection goes on after the failover
                    time.sleep(0.1)
                if producer.error is not None:
                    raise producer.error
            # Anything still to come (a restore of a record of the old master)?
            quiet_until = time.monotonic() + 6
            while time.monotonic() < quiet_until:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
                except conn.recoverable_connection_errors:
                    errors += 1
    return counts, redelivered, errors


def check(counts: collections.Counter[int], redelivered: set[int], producer: Producer2000) -> None:
    missing = sorted(set(range(TOTAL)) - set(counts))
    assert not missing, f"{len(missing)} message(s) lost: {missing[:20]}"
    twice = {i for i, n in counts.items() if n > 1}
    unexplained = twice - redelivered - producer.retried
    assert not unexplained, f"duplicates neither redelivered nor republished: {sorted(unexplained)}"


def test_master_sigkill_during_2000_messages_loses_nothing(
        redis_cluster: LocalCluster, unique: Callable[..., str]) -> None:
    owner = slot_owner(redis_cluster)
    names = [unique("cfo") for _ in range(4)]
    masters = redis_cluster.master_ports()
    assert {owner(n) for n in names} & set(masters), names
    victim = owner(names[0])
    url = redis_cluster.url()
    producer = Producer2000(url, names, TOTAL // 3, lambda: redis_cluster.kill(victim))
    producer.start()
    counts, redelivered, errors = consume_all(url, names, producer)
    producer.join(30)
    assert producer.done.is_set() and producer.error is None, producer.error
    redis_cluster.wait_failover(victim)
    check(counts, redelivered, producer)
    assert victim not in redis_cluster.master_ports()


def test_reshard_during_traffic_loses_nothing(redis_cluster: LocalCluster,
                                              unique: Callable[..., str]) -> None:
    from redis.cluster import ClusterNode, RedisCluster

    redis_cluster.wait_ok()
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                         for n in redis_cluster.live])
    try:
        masters = redis_cluster.master_ports()
        source, target = masters[0], masters[1]
        # The first slots of the source move; find queue names in them.
        slots = sorted(s for s in range(16384)
                       if int(client.nodes_manager.get_node_from_slot(s).port) == source)
        moving = set(slots[:300])
        names: list[str] = []
        while len(names) < 4:
            name = unique("crs")
            if client.keyslot("{" + name + "}") in moving:
                names.append(name)
    finally:
        client.close()
    url = redis_cluster.url()
    resharded = threading.Event()

    def reshard() -> None:
        def run() -> None:
            redis_cluster.reshard(source, target, len(moving))
            resharded.set()
        threading.Thread(target=run, daemon=True).start()

    producer = Producer2000(url, names, TOTAL // 4, reshard)
    producer.start()
    counts, redelivered, _ = consume_all(url, names, producer)
    producer.join(30)
    assert producer.done.is_set() and producer.error is None, producer.error
    assert resharded.wait(90), "the reshard did not finish"
    check(counts, redelivered, producer)
    check_client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                               for n in redis_cluster.live])
    try:
        assert all(int(check_client.get_node_from_key("{" + n + "}").port) == target
                   for n in names)
    finally:
        check_client.close()
