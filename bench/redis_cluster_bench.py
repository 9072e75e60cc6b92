"""Redis Cluster benchmark: kombu-redis on a three-master cluster vs one Redis.

    python bench/redis_cluster_bench.py [--n N] [--rounds 3] [--size 100]
                                        [--scaling | --server-cores [X]]

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

``--server-cores [X]`` (X defaults to 0.1; needs root) makes the servers the
limit, as on a deployment where each master has a machine of its own: every
redis-server (the one Redis, each cluster master and replica) runs in a
cgroup of its own with a CPU quota of X cores (bench/cpu_quota.py: cgroup
v1 ``cpu`` or v2 ``cpu.max``; the groups are removed afterwards, also on an
error or Ctrl-C).  Then, with 1, 2 and 3 producer/consumer pairs (on the
cluster pair i on a queue of master i), all producers publish ``--n``
messages each at once, then all consumers consume and ack theirs; it
prints each phase's aggregate rate and each server's CPU use as a markdown
table.  Servers at X each and clients well below their cores mean the
servers limit: one Redis stays flat, the cluster grows with the masters.
Without a usable cgroup CPU controller it says what is missing and exits
non-zero.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
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


def _phase_produce(url: str, queue_name: str, n: int, size: int, ready: Any, go: Any,
                   done: Any, release: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    _produce(url, queue_name, n, size, ready, go)
    done.put(n)
    release.wait(600)  # alive until the parent read our CPU time


def _phase_consume(url: str, queue_name: str, n: int, ready: Any, go: Any, done: Any,
                   release: Any, limit: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    from kombu import Connection, Consumer, Queue

    got = [0]

    def on_message(_body: Any, message: Any) -> None:
        got[0] += 1
        message.ack()

    with Connection(url) as conn:
        conn.ensure_connection(max_retries=3)
        conn.default_channel  # noqa: B018 (connects the channel before the clock starts)
        ready.wait()
        go.wait()
        with Consumer(conn, [Queue(queue_name)], callbacks=[on_message], prefetch_count=100):
            deadline = time.monotonic() + limit
            while got[0] < n + 1 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
    done.put(got[0])  # after the connection closed: every ack is written
    release.wait(limit + 600)


def _collect(results: Any, procs: list[Any], timeout: float) -> int:
    """The sum of one number from each of ``procs`` (via ``results``); raises if one of
    them exits without reporting, or after ``timeout`` seconds."""
    import queue

    total, missing = 0, len(procs)
    deadline = time.monotonic() + timeout
    while missing:
        try:
            total += results.get(timeout=0.5)
            missing -= 1
            continue
        except queue.Empty:
            pass
        failed = [p for p in procs if p.exitcode not in (None, 0)]
        if failed:
            raise RuntimeError(f"{len(failed)} client process(es) failed (exit code "
                               f"{failed[0].exitcode}); see their traceback above")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{missing} client process(es) did not finish within {timeout:g}s")
    return total


@dataclass
class PhaseResult:
    """One aggregate run in two phases: all producers, then all consumers."""

    publish: float                  # messages/s published by all producers together
    consume: float                  # messages/s consumed and acked by all consumers together
    publish_servers: list[float]    # each server's CPU (cores) during the publish phase
    consume_servers: list[float]    # the same during the consume phase
    publish_clients: float          # all producers' CPU (cores)
    consume_clients: float          # all consumers' CPU (cores)


def phased_aggregate(url: str, names: list[str], n: int, size: int,
                     servers: Sequence[int], limit: float = 300.0) -> PhaseResult:
    """One producer and one consumer process per queue in ``names``: first every producer
    publishes ``n`` messages at once, then every consumer consumes and acks its ``n``.

    Each phase's rate is all its messages over the time from the start signal
    until the last process reported; the CPU of each pid in ``servers`` and of
    the clients is sampled around each phase (/proc).
    """
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(2 * len(names) + 1)
    go_publish, go_consume, release = ctx.Event(), ctx.Event(), ctx.Event()
    published, consumed = ctx.Queue(), ctx.Queue()
    producers = [ctx.Process(target=_phase_produce,
                             args=(url, name, n, size, ready, go_publish, published, release))
                 for name in names]
    consumers = [ctx.Process(target=_phase_consume,
                             args=(url, name, n, ready, go_consume, consumed, release, limit))
                 for name in names]
    finished = False
    try:
        for p in producers + consumers:
            p.start()
        ready.wait(timeout=60)

        def phase(go: Any, results: Any, clients: list[Any]) -> tuple[float, list[float],
                                                                      float, int]:
            pids = [p.pid for p in clients if p.pid is not None]
            before = ([cpu_seconds([s]) for s in servers], cpu_seconds(pids))
            start = time.perf_counter()
            go.set()
            total = _collect(results, clients, limit + 60)
            elapsed = time.perf_counter() - start
            return (elapsed,
                    [(cpu_seconds([s]) - b) / elapsed for s, b in zip(servers, before[0])],
                    (cpu_seconds(pids) - before[1]) / elapsed, total)

        pub_time, pub_servers, pub_clients, _ = phase(go_publish, published, producers)
        con_time, con_servers, con_clients, got = phase(go_consume, consumed, consumers)
        if got != len(names) * (n + 1):
            raise RuntimeError(f"the consumers got {got} of {len(names) * (n + 1)} messages "
                               f"within {limit:g}s: the servers are too slow for --n {n}; "
                               "lower --n or raise --server-cores")
        finished = True
        return PhaseResult(len(names) * n / pub_time, len(names) * n / con_time,
                           pub_servers, con_servers, pub_clients, con_clients)
    finally:
        release.set()
        for p in producers + consumers:
            if p.pid is None:
                continue
            p.join(30 if finished else 0.1)
            if p.is_alive():
                p.terminate()
                p.join(5)


def names_per_master(cluster_url: str, count: int) -> list[str]:
    """One fresh queue name on each of ``count`` masters (by the slot of ``{name}``),
    in the order of the masters' ports."""
    return list(queues_by_master(cluster_url, count).values())


def queues_by_master(cluster_url: str, count: int) -> dict[int, str]:
    """Master port -> a fresh queue name that master serves, for the ``count`` masters
    with the lowest ports."""
    from redis.cluster import ClusterNode, RedisCluster

    host, port = cluster_url.split(";")[0].split("://")[1].split(":")
    client = RedisCluster(startup_nodes=[ClusterNode(host, int(port))])
    try:
        masters = sorted(node.port for node in client.get_primaries())[:count]
        picked: dict[int, str] = {}
        for _ in range(10_000):
            if len(picked) == len(masters):
                return {m: picked[m] for m in masters}
            name = f"bench-{uuid.uuid4().hex[:8]}"
            master = client.get_node_from_key("{" + name + "}").port
            if master in masters:
                picked.setdefault(master, name)
        raise RuntimeError(f"found no queue name for each of the masters {masters}")
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None,
                        help="messages (per pair in aggregates); default 3000, and 10000 "
                             "with --server-cores (phases of seconds, for a steady CPU reading)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=100)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--scaling", action="store_true",
                      help="only aggregate throughput with 1, 2, 3 producer/consumer pairs "
                           "(one per master on the cluster), with the CPU the servers and "
                           "the clients used")
    mode.add_argument("--server-cores", type=float, nargs="?", const=0.1, metavar="X",
                      help="limit every redis-server to X cores (default 0.1) with a cgroup "
                           "CPU quota (needs root), then measure aggregate publish and "
                           "consume+ack with 1, 2, 3 pairs and each server's CPU")
    args = parser.parse_args()
    if args.n is None:
        args.n = 3000 if args.server_cores is None else 10_000
    from helpers.redis_cluster import LocalCluster
    from helpers.redis_server import RedisServer

    # SIGTERM unwinds like Ctrl-C: servers stopped, cgroups removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    quota = None
    if args.server_cores is not None:
        from cpu_quota import CpuQuota, QuotaUnavailable

        try:
            quota = CpuQuota(args.server_cores)
        except (QuotaUnavailable, ValueError) as exc:
            sys.exit(f"--server-cores: {exc}")
    cluster = single = None
    try:
        cluster = LocalCluster().start()
        single = RedisServer()
        urls = {"one Redis": f"redis://127.0.0.1:{single.port}/0", "cluster": cluster.url()}
        if quota is not None:
            with_quota(urls, cluster, single, quota, args)
            return
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
        if single is not None:
            single.stop()
        if cluster is not None:
            cluster.stop()
        if quota is not None:
            for group in quota.close():
                print(f"could not remove the cgroup {group}; remove it with rmdir once "
                      "its processes exited", file=sys.stderr)


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


def with_quota(urls: dict[str, str], cluster: Any, single: Any, quota: Any, args: Any) -> None:
    """Aggregate publish and consume+ack with 1, 2, 3 pairs, every server CPU-limited."""
    masters = cluster.master_ports()
    replicas = sorted(n.port for n in cluster.live if n.port not in masters)
    servers = {"one Redis": [single.proc.pid],
               "cluster": [cluster.node(port).proc.pid for port in masters + replicas]}
    quota.limit(single.proc.pid, f"redis-{single.port}")
    for port in masters + replicas:
        quota.limit(cluster.node(port).proc.pid, f"redis-cluster-{port}")
    rows: dict[tuple[str, int], list[PhaseResult]] = {}
    for r in range(args.rounds):
        for label in (list(urls) if r % 2 == 0 else list(reversed(urls))):
            for pairs in ((1, 2, 3) if r % 2 == 0 else (3, 2, 1)):
                names = list(queues_by_master(urls["cluster"], pairs).values()) \
                    if label == "cluster" else [f"bench-{uuid.uuid4().hex[:8]}"
                                                for _ in range(pairs)]
                result = phased_aggregate(urls[label], names, args.n, args.size, servers[label])
                rows.setdefault((label, pairs), []).append(result)
                print(f"round {r + 1}: {label}, {pairs} pair(s): publish {result.publish:.0f}/s,"
                      f" consume+ack {result.consume:.0f}/s", file=sys.stderr)
    print(quota_table(rows, args, quota.cores, len(masters)))


def quota_table(rows: dict[tuple[str, int], list[PhaseResult]], args: Any, cores: float,
                masters: int) -> str:
    """The markdown table of :func:`with_quota` (medians; CPU in cores)."""
    def med(values: list[PhaseResult], get: Any) -> float:
        return float(statistics.median(get(v) for v in values))

    def cpu(values: list[PhaseResult], servers: str, label: str) -> str:
        each = [med(values, lambda v, i=i: getattr(v, servers)[i])
                for i in range(len(getattr(values[0], servers)))]
        if label != "cluster":
            return f"{each[0]:.2f}"
        return " ".join(f"{c:.2f}" for c in each[:masters]) + \
            f" (replicas {sum(each[masters:]):.2f})"

    lines = [
        f"Every redis-server limited to {cores:g} core (cgroup CPU quota); aggregate "
        f"messages/s, median of {args.rounds} rounds, {args.n} messages of {args.size} "
        f"bytes per pair; first all producers publish, then all consumers consume and "
        f"ack (prefetch 100). Server CPU in cores: one Redis, or each master of the "
        f"cluster (pair i on a queue of master i) and the replicas together. "
        f"({os.cpu_count()} cores here, shared.)",
        "",
        "| target | pairs | publish msg/s | consume+ack msg/s | servers' CPU, publish "
        "| servers' CPU, consume+ack | clients' CPU, publish / consume |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in ("one Redis", "cluster"):
        base = rows[(label, 1)]
        for pairs in (1, 2, 3):
            values = rows[(label, pairs)]
            pub, con = med(values, lambda v: v.publish), med(values, lambda v: v.consume)
            pub_x = pub / med(base, lambda v: v.publish)
            con_x = con / med(base, lambda v: v.consume)
            lines.append(
                f"| {label} | {pairs} | {pub:.0f} ({pub_x:.1f}x) | {con:.0f} ({con_x:.1f}x) "
                f"| {cpu(values, 'publish_servers', label)} "
                f"| {cpu(values, 'consume_servers', label)} "
                f"| {med(values, lambda v: v.publish_clients):.2f} / "
                f"{med(values, lambda v: v.consume_clients):.2f} |")
    return "\n" + "\n".join(lines)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: the servers are stopped and the cgroups removed", file=sys.stderr)
        sys.exit(130)
