"""Redis Cluster benchmark: kombu-redis on a three-master cluster vs one Redis.

    python bench/redis_cluster_bench.py [--n 3000] [--rounds 3] [--size 100]

Starts its own cluster (six redis-server processes on loopback: three
masters, three replicas; see tests/helpers/redis_cluster.py) and its own
single redis-server on a free port, and stops them afterwards.  Per round,
alternating the two: publish, consume with acks (prefetch 100) and one
message round trip, on one connection; then aggregate throughput with one
producer process and one consumer process per master (each pair on a queue
that master serves; on one Redis, as many pairs on the one server).
Prints medians over the rounds.

``--scaling`` measures only the aggregate, with 1, 2 and 3 pairs, and the
CPU (in cores) the servers and the client processes used: whether the
servers or the clients are what limits the rate on this machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def single_connection(url: str, n: int, size: int, queue_name: str) -> dict[str, float]:
    from kombu import Connection, Consumer, Producer, Queue

    body = "x" * size
    queue = Queue(queue_name)
    out: dict[str, float] = {}
    with Connection(url) as conn:
        producer = Producer(conn)
        producer.publish(body, routing_key=queue_name, declare=[queue])
        conn.default_channel.queue_purge(queue_name)
        start = time.perf_counter()
        for _ in range(n):
            producer.publish(body, routing_key=queue_name)
        out["publish"] = n / (time.perf_counter() - start)
        got = [0]

        def on_message(_body: Any, message: Any) -> None:
            got[0] += 1
            message.ack()

        with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=100):
            start = time.perf_counter()
            while got[0] < n:
                conn.drain_events(timeout=10)
            out["consume+ack"] = n / (time.perf_counter() - start)
            rounds = max(n // 10, 50)
            start = time.perf_counter()
            for _ in range(rounds):
                before = got[0]
                producer.publish(body, routing_key=queue_name)
                while got[0] == before:
                    conn.drain_events(timeout=10)
            out["round trip"] = rounds / (time.perf_counter() - start)
        conn.default_channel.queue_delete(queue_name)
    return out


def _produce(url: str, queue_name: str, n: int, size: int, ready: Any, go: Any) -> None:
    from kombu import Connection, Producer, Queue

    with Connection(url) as conn:
        producer = Producer(conn)
        producer.publish("warm", routing_key=queue_name, declare=[Queue(queue_name)])
        ready.wait()
        go.wait()
        body = "x" * size
        for _ in range(n):
            producer.publish(body, routing_key=queue_name)


def _consume(url: str, queue_name: str, n: int, ready: Any, go: Any, done: Any) -> None:
    from kombu import Connection, Consumer, Queue

    got = [0]

    def on_message(_body: Any, message: Any) -> None:
        got[0] += 1
        message.ack()

    with Connection(url) as conn:
        with Consumer(conn, [Queue(queue_name)], callbacks=[on_message], prefetch_count=100):
            ready.wait()
            go.wait()
            deadline = time.monotonic() + 120
            while got[0] < n + 1 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
    done.put(got[0])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` used so far (Linux /proc)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def aggregate(url: str, names: list[str], n: int, size: int,
              usage: dict[str, float] | None = None, servers: Sequence[int] = ()) -> float:
    """Messages per second consumed by len(names) producer/consumer pairs together.

    With ``usage``, records the CPU share (of one core) the ``servers`` pids
    and the client processes used during the run (``server``, ``clients``).
    """
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(2 * len(names) + 1)
    go = ctx.Event()
    done = ctx.Queue()
    procs = []
    for name in names:
        procs.append(ctx.Process(target=_produce, args=(url, name, n, size, ready, go)))
        procs.append(ctx.Process(target=_consume, args=(url, name, n, ready, go, done)))
    for p in procs:
        p.start()
    ready.wait(timeout=60)
    clients = [p.pid for p in procs if p.pid is not None]
    before = (cpu_seconds(list(servers)), cpu_seconds(clients))
    start = time.perf_counter()
    go.set()
    total = sum(done.get(timeout=180) for _ in names)
    elapsed = time.perf_counter() - start
    if usage is not None:
        usage["server"] = (cpu_seconds(list(servers)) - before[0]) / elapsed
        usage["clients"] = (cpu_seconds(clients) - before[1]) / elapsed
    for p in procs:
        p.join(30)
    return (total - len(names)) / elapsed


def names_per_master(cluster_url: str, count: int) -> list[str]:
    """One fresh queue name on each master (by the slot of ``{name}``)."""
    from redis.cluster import ClusterNode, RedisCluster

    host, port = cluster_url.split(";")[0].split("://")[1].split(":")
    client = RedisCluster(startup_nodes=[ClusterNode(host, int(port))])
    try:
        picked: dict[str, str] = {}
        while len(picked) < count:
            name = f"bench-{uuid.uuid4().hex[:8]}"
            picked.setdefault(client.get_node_from_key("{" + name + "}").name, name)
        return list(picked.values())
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--scaling", action="store_true",
                        help="only aggregate throughput with 1, 2, 3 producer/consumer pairs "
                             "(one per master on the cluster), with the CPU the servers and "
                             "the clients used")
    args = parser.parse_args()
    from helpers.redis_cluster import LocalCluster
    from helpers.redis_server import RedisServer

    cluster = LocalCluster().start()
    single = RedisServer()
    try:
        urls = {"one Redis": f"redis://127.0.0.1:{single.port}/0", "cluster": cluster.url()}
        if args.scaling:
            scaling(urls, cluster, single, args)
            return
        results: dict[str, dict[str, list[float]]] = {k: {} for k in urls}
        for r in range(args.rounds):
            for label in (list(urls) if r % 2 == 0 else list(reversed(urls))):
                url = urls[label]
                for metric, value in single_connection(
                        url, args.n, args.size, f"bench-{uuid.uuid4().hex[:8]}").items():
                    results[label].setdefault(metric, []).append(value)
                names = names_per_master(urls["cluster"], 3) if label == "cluster" else \
                    [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(3)]
                results[label].setdefault("aggregate, 3 pairs", []).append(
                    aggregate(url, names, args.n, args.size))
                results[label].setdefault("aggregate, 1 pair", []).append(
                    aggregate(url, names[:1], args.n, args.size))
        print(f"\nmessages/s, median of {args.rounds} rounds, {args.n} messages of "
              f"{args.size} bytes\n")
        print(f"| {'measure':<22} | {'one Redis':>10} | {'cluster':>10} | cluster/one |")
        print(f"|{'-' * 24}|{'-' * 12}|{'-' * 12}|{'-' * 13}|")
        for metric in results["cluster"]:
            one = statistics.median(results["one Redis"][metric])
            clu = statistics.median(results["cluster"][metric])
            print(f"| {metric:<22} | {one:>10.0f} | {clu:>10.0f} | {clu / one:>11.2f} |")
    finally:
        single.stop()
        cluster.stop()


def scaling(urls: dict[str, str], cluster: Any, single: Any, args: Any) -> None:
    """Aggregate throughput against the number of pairs, and where the CPU went."""
    pids = {"one Redis": [single.proc.pid], "cluster": [n.proc.pid for n in cluster.live]}
    rows: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for r in range(args.rounds):
        for label in (list(urls) if r % 2 == 0 else list(reversed(urls))):
            for pairs in (1, 2, 3):
                names = names_per_master(urls["cluster"], pairs) if label == "cluster" else \
                    [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(pairs)]
                usage: dict[str, float] = {}
                rate = aggregate(urls[label], names, args.n, args.size, usage, pids[label])
                rows.setdefault((label, pairs), []).append(
                    (rate, usage["server"], usage["clients"]))
    print(f"\naggregate messages/s, median of {args.rounds} rounds, {args.n} messages of "
          f"{args.size} bytes per pair; CPU in cores ({os.cpu_count()} here)\n")
    print("| target    | pairs | msg/s | servers' CPU | clients' CPU |")
    print("|-----------|-------|-------|--------------|--------------|")
    for (label, pairs), values in rows.items():
        rate, server, clients = (statistics.median(v[i] for v in values) for i in range(3))
        print(f"| {label:<9} | {pairs:>5} | {rate:>5.0f} | {server:>12.2f} | {clients:>12.2f} |")


if __name__ == "__main__":
    main()
