"""Command routing on a Redis Cluster: kombu-redis's ClusterLink against
redis-py's RedisCluster command API, on the same cluster, in the same run.

    python bench/redis_cluster_routing.py [--n 5000] [--rounds 5]

Starts its own cluster (six redis-server processes on loopback, see
tests/helpers/redis_cluster.py).  Per round, alternating: ``--n`` 100-byte
LPUSHes one by one (``RedisCluster.execute_command`` against
``ClusterLink.call_on``), then in pipelines of 50 (``RedisCluster.pipeline()``
against ``ClusterLink.pipe``).  Prints medians, in commands per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.redis_cluster import LocalCluster

BATCH = 50


def main(argv: list[str] | None = None) -> int:
    from kombu import Connection
    from redis.cluster import ClusterNode, RedisCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.n - args.n % BATCH
    cluster = LocalCluster().start()
    try:
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", node.port)
                                         for node in cluster.live])
        with Connection(cluster.url()) as conn:
            link = conn.default_channel.link
            key, body = "{routing-bench}", b"x" * 100

            def rc_one() -> None:
                for _ in range(n):
                    rc.execute_command("LPUSH", key, body)

            def link_one() -> None:
                for _ in range(n):
                    link.call_on(key, "LPUSH", key, body)

            def rc_pipe() -> None:
                for _ in range(n // BATCH):
                    pipe = rc.pipeline(transaction=False)
                    for _ in range(BATCH):
                        pipe.execute_command("LPUSH", key, body)
                    pipe.execute()

            def link_pipe() -> None:
                for _ in range(n // BATCH):
                    link.pipe(*[("LPUSH", key, body)] * BATCH)

            cases: dict[str, Callable[[], None]] = {
                "RedisCluster.execute_command": rc_one, "ClusterLink.call_on": link_one,
                f"RedisCluster.pipeline() x{BATCH}": rc_pipe, f"ClusterLink.pipe x{BATCH}": link_pipe}
            rates: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, run in cases.items():
                    start = time.perf_counter()
                    run()
                    rates[name].append(n / (time.perf_counter() - start))
                rc.delete(key)
        rc.close()
    finally:
        cluster.stop()
    med = {name: statistics.median(r) for name, r in rates.items()}
    names = list(med)
    print("| path | commands/s |")
    print("|---|---|")
    for name in names:
        print(f"| {name} | {med[name]:.0f} |")
    print(f"\none by one: ClusterLink / RedisCluster = {med[names[1]] / med[names[0]]:.2f}x; "
          f"pipelined: {med[names[3]] / med[names[2]]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
