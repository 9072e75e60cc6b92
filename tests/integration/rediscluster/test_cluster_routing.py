"""kombu-redis on a real Redis Cluster: routing over many masters, priorities,
the key layout (one slot per queue), dead consumers.

The cluster (three masters, three replicas on loopback) is the session's
``redis_cluster`` fixture.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import textwrap
from typing import Any, Callable

import pytest
from helpers import wait_until
from helpers.draining import drain_until, is_quiet
from helpers.redis_cluster import LocalCluster
from kombu import Connection, Consumer, Exchange, Producer, Queue

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(120)]


def cluster_client(cluster: LocalCluster) -> Any:
    from redis.cluster import ClusterNode, RedisCluster

    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster.live])


def masters_of(cluster: LocalCluster, names: list[str]) -> set[str]:
    client = cluster_client(cluster)
    try:
        return {client.get_node_from_key("{" + n + "}").name for n in names}
    finally:
        client.close()


def test_rejects_a_single_redis_and_database_numbers(redis_cluster: LocalCluster) -> None:
    from kombu_redis.cluster import NotACluster
    from kombu_redis.errors import InvalidDatabase

    node = redis_cluster.live[0]
    with pytest.raises(InvalidDatabase, match="database 0 only"):
        Connection(f"rediscluster://127.0.0.1:{node.port}/3").connect()
    with pytest.raises(NotACluster, match="not a cluster node"):
        Connection("rediscluster://127.0.0.1:6379").connect()


def test_evented_on_a_cluster(redis_cluster: LocalCluster) -> None:
    """The cluster runs under the event loop as one Redis does (Celery picks its
    Hub loop); tests/integration/rediscluster/test_cluster_hub.py drives it."""
    node = redis_cluster.live[0]
    with Connection(f"rediscluster://127.0.0.1:{node.port}") as conn:
        conn.connect()
        assert conn.transport.implements.asynchronous is True
        assert conn.is_evented is True


def test_direct_topic_fanout_over_twenty_queues(redis_cluster: LocalCluster,
                                                unique: Callable[..., str]) -> None:
    names = [unique("cq") for _ in range(20)]
    assert len(masters_of(redis_cluster, names)) == 3, "the queues should span every master"
    direct = Exchange(unique("cx"), type="direct")
    topic = Exchange(unique("ct"), type="topic")
    fan = Exchange(unique("cf"), type="fanout")
    queues = []
    for i, name in enumerate(names):
        if i < 8:
            queues.append(Queue(name, direct, routing_key=f"k{i % 4}"))
        elif i < 16:
            queues.append(Queue(name, topic, routing_key="a.*.c" if i % 2 else "a.#"))
        else:
            queues.append(Queue(name, fan))
    got: collections.Counter[str] = collections.Counter()

    def on_message(body: Any, message: Any) -> None:
        got[message.delivery_info["routing_key"] + "|" + body["q"]] += 1
        got["total"] += 1
        message.ack()

    with Connection(redis_cluster.url()) as conn:
        with Consumer(conn, queues, callbacks=[on_message], prefetch_count=50):
            producer = Producer(conn)
            for k in range(4):  # each to 2 queues
                for _ in range(5):
                    producer.publish({"q": "d"}, exchange=direct, routing_key=f"k{k}")
            for _ in range(5):
                producer.publish({"q": "t"}, exchange=topic, routing_key="a.b.c")   # 8 queues
                producer.publish({"q": "t"}, exchange=topic, routing_key="a.b.d")   # 4 queues
            for _ in range(3):
                producer.publish({"q": "f"}, exchange=fan, routing_key="")          # 4 queues
            expected = 4 * 5 * 2 + 5 * 8 + 5 * 4 + 3 * 4
            drain_until(conn, _Counted(got), expected, timeout=30)
            assert is_quiet(conn, 0.5)
    assert got["total"] == expected
    assert got["k0|d"] == got["k3|d"] == 10
    assert got["a.b.c|t"] == 40 and got["a.b.d|t"] == 20 and got["|f"] == 12


class _Counted(list):  # type: ignore[type-arg]
    """A list whose length is a counter's total (for drain_until)."""

    def __init__(self, counter: collections.Counter[str]) -> None:
        super().__init__()
        self.counter = counter

    def __len__(self) -> int:
        return self.counter["total"]


def test_priorities_and_one_slot_per_queue(redis_cluster: LocalCluster,
                                           unique: Callable[..., str]) -> None:
    name = unique("cp")
    queue = Queue(name, max_priority=9)
    with Connection(redis_cluster.url()) as conn:
        producer = Producer(conn)
        for pri in (9, 0, 6, 3, 0, 9):
            producer.publish({"p": pri}, routing_key=name, priority=pri, declare=[queue])
        producer.publish("not an envelope", routing_key=name, priority=0, serializer="raw")
        client = cluster_client(redis_cluster)
        try:
            # A raw non-envelope into the list: quarantined when consumed.
            client.lpush("{" + name + "}", b"garbage")
            channel = conn.default_channel
            order = []
            held = []
            for _ in range(7):
                message = channel.basic_get(name)
                assert message is not None
                held.append(message)
                if isinstance(message.payload, dict):
                    order.append(message.payload["p"])
            assert order == [0, 0, 3, 6, 9, 9]
            # Every key that names the queue, on every master, is in one slot.
            keys = set()
            for node in client.get_primaries():
                keys.update(k.decode() for k in client.scan_iter(
                    match=f"*{name}*", target_nodes=node, count=1000))
            slots = {client.keyslot(k) for k in keys}
            assert len(slots) == 1, f"keys of {name} in several slots: {sorted(keys)}"
            assert f"unacked.{{{name}}}" in keys and f"unacked_index.{{{name}}}" in keys
            assert "{" + name + "}" + "\x06\x16rejected" in keys
            assert client.hlen(f"unacked.{{{name}}}") == 7
            for message in held:
                message.ack()
            wait_until(lambda: client.hlen(f"unacked.{{{name}}}") == 0, timeout=5)
        finally:
            client.close()


CONSUMER = textwrap.dedent("""
    import sys, time
    from kombu import Connection, Consumer, Queue
    url, names = sys.argv[1], sys.argv[2:]
    held = []
    with Connection(url, transport_options={"visibility_timeout": 2}) as conn:
        with Consumer(conn, [Queue(n) for n in names], prefetch_count=30,
                      callbacks=[lambda body, message: held.append(message)]):
            deadline = time.monotonic() + 30
            while len(held) < 12 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except OSError:
                    pass
            print("HOLDING", len(held), flush=True)
            time.sleep(60)
""")


def test_a_killed_consumer_s_messages_come_back(redis_cluster: LocalCluster,
                                                unique: Callable[..., str]) -> None:
    names = [unique("ck") for _ in range(3)]
    url = redis_cluster.url()
    with Connection(url) as conn:
        producer = Producer(conn)
        for name in names:
            for i in range(4):
                producer.publish({"n": name, "i": i}, routing_key=name, declare=[Queue(name)])
    with subprocess.Popen([sys.executable, "-c", CONSUMER, url, *names],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline().decode()
            if not line.startswith("HOLDING 12"):
                proc.kill()
                pytest.fail(line + proc.stderr.read().decode()[-2000:])
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    got: list[Any] = []
    options = {"visibility_timeout": 2, "unacked_restore_interval": 0.2}
    with Connection(url, transport_options=options) as conn:
        def on_message(body: Any, message: Any) -> None:
            got.append((body["n"], body["i"], message.delivery_info.get("redelivered")))
            message.ack()

        with Consumer(conn, [Queue(n) for n in names], callbacks=[on_message]):
            drain_until(conn, got, 12, timeout=30)
            assert is_quiet(conn, 0.5)
    assert sorted((n, i) for n, i, _ in got) == sorted((n, i) for n in names for i in range(4))
    assert all(redelivered for _, _, redelivered in got)


def test_clean_close_gives_prefetched_messages_back_at_once(
        redis_cluster: LocalCluster, unique: Callable[..., str]) -> None:
    names = [unique("cc") for _ in range(4)]
    url = redis_cluster.url()
    with Connection(url) as conn:
        producer = Producer(conn)
        for name in names:
            for i in range(5):
                producer.publish({"i": i}, routing_key=name, declare=[Queue(name)])
        got: list[Any] = []
        with Consumer(conn, [Queue(n) for n in names], prefetch_count=20,
                      callbacks=[lambda body, message: got.append(message)]):
            drain_until(conn, got, 3, timeout=10)
    with Connection(url) as conn:
        sizes = [conn.default_channel.queue_declare(n, passive=True).message_count
                 for n in names]
    # Back at once: the visibility timeout (3600 s by default) played no part.
    assert sum(sizes) == 20, sizes
