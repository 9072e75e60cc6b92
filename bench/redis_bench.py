"""Redis transport benchmark: this project vs kombu 5.x vs raw redis-py.

    python bench/redis_bench.py [--url redis://127.0.0.1:6379/8] [--n 3000] [--rounds 5]

Each round runs, alternating, this project's Redis transport (in this
process), kombu 5.x (``.venv-kombu/bin/python`` beside this directory, as a
subprocess running this same file with ``--worker``) and raw redis-py
(``LPUSH``/``BRPOP`` per message), with 100-byte and 10 KB bodies, and
prints medians and ratios; the order of the three rotates from round to
round.  Measures: publish (default exchange); publish_direct (through a
direct exchange, so the binding lookup is on the publish path); consume
with acks (prefetch 100); publish-then-receive round trip (one message at a
time).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

KOMBU_PYTHON = Path(__file__).resolve().parent.parent / ".venv-kombu" / "bin" / "python"
SIZES = (100, 10_000)


def bench_kombu_api(url: str, n: int, size: int) -> dict[str, float]:
    """Messages per second through the kombu API of whichever kombu is imported."""
    from kombu import Connection, Consumer, Exchange, Producer, Queue

    body = "x" * size
    name = f"bench-{uuid.uuid4().hex[:8]}"
    queue = Queue(name)
    results: dict[str, float] = {}
    with Connection(url) as conn:
        producer = Producer(conn.channel())
        producer.publish(body, routing_key=name, declare=[queue], serializer="raw")
        queue(conn.default_channel).purge()
        start = time.perf_counter()
        for _ in range(n):
            producer.publish(body, routing_key=name, serializer="raw")
        results["publish"] = n / (time.perf_counter() - start)

        got = [0]

        def on_message(b: Any, message: Any) -> None:
            got[0] += 1
            message.ack()

        with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=100):
            start = time.perf_counter()
            while got[0] < n:
                conn.drain_events(timeout=5)
            results["consume_ack"] = n / (time.perf_counter() - start)
            rounds = max(n // 5, 200)
            start = time.perf_counter()
            for _ in range(rounds):
                before = got[0]
                producer.publish(body, routing_key=name, serializer="raw")
                while got[0] == before:
                    conn.drain_events(timeout=5)
            results["roundtrip"] = rounds / (time.perf_counter() - start)
        # Through a direct exchange: the binding lookup is on the publish path.
        exchange = Exchange(f"{name}-x", "direct")
        routed = Producer(conn.channel(), exchange)
        routed.publish(body, routing_key=name, serializer="raw",
                       declare=[Queue(name, exchange, routing_key=name)])
        start = time.perf_counter()
        for _ in range(n):
            routed.publish(body, routing_key=name, serializer="raw")
        results["publish_direct"] = n / (time.perf_counter() - start)
        queue(conn.default_channel).delete()
        exchange(conn.default_channel).delete()
    return results


def bench_raw(url: str, n: int, size: int) -> dict[str, float]:
    import redis

    client = redis.Redis.from_url(url)
    key = f"bench-raw-{uuid.uuid4().hex[:8]}"
    body = b"x" * size
    start = time.perf_counter()
    for _ in range(n):
        client.lpush(key, body)
    publish = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        client.brpop([key], timeout=5)
    consume = n / (time.perf_counter() - start)
    client.delete(key)
    client.close()
    return {"publish": publish, "consume_ack": consume}


def run_kombu(url: str, n: int, size: int) -> dict[str, float] | None:
    if not KOMBU_PYTHON.exists():
        return None
    out = subprocess.run([str(KOMBU_PYTHON), __file__, "--worker", "--url", url, "--n", str(n),
                          "--size", str(size)], capture_output=True, text=True, timeout=600,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(bench_kombu_api(args.url, args.n, args.size)))
        return
    if not args.url.startswith(("redis://127.", "redis://localhost")):
        sys.exit("benchmarks only run against a loopback Redis")
    for size in SIZES:
        samples: dict[str, dict[str, list[float]]] = {"ours": {}, "kombu": {}, "raw": {}}
        sides = [("ours", bench_kombu_api), ("kombu", run_kombu), ("raw", bench_raw)]
        for i in range(args.rounds):
            for who, fn in sides[i % 3:] + sides[:i % 3]:  # the order rotates
                result = fn(args.url, args.n, size)
                for metric, value in (result or {}).items():
                    samples[who].setdefault(metric, []).append(value)
        print(f"\nbody {size} bytes, {args.n} messages, median of {args.rounds} rounds (msg/s)")
        print(f"{'metric':<15}{'ours':>10}{'kombu':>10}{'raw':>10}{'ours/kombu':>12}{'ours/raw':>10}")
        for metric in ("publish", "publish_direct", "consume_ack", "roundtrip"):
            med = {who: statistics.median(v[metric]) if metric in v else None
                   for who, v in samples.items()}
            ours, kombu, raw = med["ours"], med["kombu"], med["raw"]
            fmt = lambda v: f"{v:>10.0f}" if v else f"{'-':>10}"  # noqa: E731
            ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"  # noqa: E731
            print(f"{metric:<15}{fmt(ours)}{fmt(kombu)}{fmt(raw)}{ratio(ours, kombu):>12}"
                  f"{ratio(ours, raw):>10}")


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    main()
