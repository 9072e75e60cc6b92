"""Benchmark workloads, written only against kombu's public API.

The same file runs under this project's virtualenv and under one with real
kombu 5.x; ``bench/run.py`` starts it in both and compares.  Each result is
printed on stdout as one JSON line::

    python bench/workloads.py messaging --url memory:// --n 20000
    python bench/workloads.py simple --url memory:// --n 20000
    python bench/workloads.py startup --samples 5

``messaging`` publishes N messages through one Producer to a direct
exchange, then consumes them with one Consumer (prefetch_count 100, each
acked) through ``Connection.drain_events``: two results, ``publish`` and
``consume``.  ``simple`` puts one message on a SimpleQueue, gets and acks it,
N times.  ``startup`` times fresh interpreters: ``python -c "import kombu"``
(and ``python -c pass`` for reference), and, in process, importing kombu
plus a first ``Connection('memory://').connect()``.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

#: A task-like message body that JSON-encodes to about 100 bytes.
BODY = {"id": "5f0c7d2e-0b1a", "task": "bench.add", "args": [1, 2], "kwargs": {},
        "retries": 0, "eta": None}
#: Bound on any single wait for a message, in seconds.
WAIT = 10.0
#: Bound on one child interpreter of the startup workload, in seconds.
CHILD_TIMEOUT = 60.0

FIRST_CONNECT = """\
import time
t = time.perf_counter()
from kombu import Connection
conn = Connection("memory://")
conn.connect()
print(time.perf_counter() - t)
conn.release()
"""


def emit(workload: str, **fields: Any) -> None:
    import kombu

    print(json.dumps({"workload": workload, "kombu": kombu.__version__,
                      "python": platform.python_version(), **fields}), flush=True)


def messaging(url: str, n: int) -> None:
    from kombu import Connection, Consumer, Exchange, Producer, Queue

    tag = uuid.uuid4().hex[:10]
    exchange = Exchange(f"bench-x-{tag}", "direct", durable=False)
    queue = Queue(f"bench-q-{tag}", exchange, routing_key="bench", durable=False)
    with Connection(url) as conn:
        channel = conn.channel()
        queue(channel).declare()
        producer = Producer(channel, exchange=exchange, routing_key="bench")
        publish = producer.publish
        body = BODY
        start = time.perf_counter()
        for _ in range(n):
            publish(body)
        elapsed = time.perf_counter() - start
        emit("publish", url=url, n=n, seconds=elapsed, rate=n / elapsed)

        received = 0

        def on_message(body: Any, message: Any) -> None:
            nonlocal received
            received += 1
            message.ack()

        drain = conn.drain_events
        with Consumer(conn.channel(), [queue], callbacks=[on_message], prefetch_count=100):
            start = time.perf_counter()
            while received < n:
                try:
                    drain(timeout=WAIT)
                except socket.timeout:
                    raise SystemExit(f"consume: got {received} of {n} messages, then "
                                     f"nothing for {WAIT}s") from None
            elapsed = time.perf_counter() - start
        emit("consume", url=url, n=n, seconds=elapsed, rate=n / elapsed)
        queue(channel).delete()


def simple(url: str, n: int) -> None:
    from kombu import Connection

    with Connection(url) as conn:
        queue = conn.SimpleQueue(f"bench-simple-{uuid.uuid4().hex[:10]}",
                                 queue_opts={"durable": False},
                                 exchange_opts={"durable": False})
        put, get, body = queue.put, queue.get, BODY
        start = time.perf_counter()
        for _ in range(n):
            put(body)
            get(timeout=WAIT).ack()
        elapsed = time.perf_counter() - start
        queue.queue.delete()
        queue.close()
    emit("simple", url=url, n=n, seconds=elapsed, rate=n / elapsed)


def _wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, timeout=CHILD_TIMEOUT, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def startup(samples: int) -> None:
    python = sys.executable
    baseline = statistics.median(_wall([python, "-c", "pass"]) for _ in range(samples))
    import_wall = statistics.median(
        _wall([python, "-c", "import kombu"]) for _ in range(samples))
    first_connect = statistics.median(
        float(subprocess.run([python, "-c", FIRST_CONNECT], check=True, capture_output=True,
                             text=True, timeout=CHILD_TIMEOUT).stdout)
        for _ in range(samples))
    emit("import", seconds=import_wall, baseline=baseline, samples=samples)
    emit("first_connect", seconds=first_connect, samples=samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=("messaging", "simple", "startup"))
    parser.add_argument("--url", default="memory://")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args(argv)
    if args.workload == "messaging":
        messaging(args.url, args.n)
    elif args.workload == "simple":
        simple(args.url, args.n)
    else:
        startup(args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
