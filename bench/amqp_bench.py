"""AMQP transport benchmark: this project vs kombu 5.x vs raw py-amqp.

    python bench/amqp_bench.py [--url amqp://guest:guest@127.0.0.1:5672//] [--n 5000] [--rounds 5]

Each round runs, alternating (the order rotates from round to round), this
project's pyamqp transport through the kombu API (in this process), kombu
5.x's pyamqp transport through the same kombu API code
(``.venv-kombu/bin/python`` beside this directory, as a subprocess running
this same file with ``--worker``, without ``PYTHONPATH`` so that it imports
kombu 5.x and not this project) and two references using the ``amqp``
library directly (``basic_publish`` per message, ``basic_consume`` with
prefetch 100):

* ``raw``: ``basic_ack`` per message, as the kombu API does;
* ``raw-batch``: ``basic_ack(tag, multiple=True)`` once per 50 messages
  (half the prefetch, so the broker never runs out of credit) and for the
  last ones; fewer acks on the wire than any kombu consumer sends, so it is
  a reference for what batching acks gains, not for the transport.  Its
  publish loop is the same code as ``raw``'s.

with 100-byte and 10 KB bodies, and prints medians, the ratios of the
medians and the per-round ratios (and their median).  Measures, on a new
non-durable queue per run (deleted afterwards):

* publish: N messages through one Producer (default exchange, routed to the
  queue, ``serializer="raw"``, no confirms); only the publish loop is timed.
* consume_ack: the N messages just published (the run first waits until the
  broker holds all N), one Consumer, prefetch_count=100, acking each; only
  the loop draining events is timed.

Raw py-amqp sends the same message properties as the kombu API does.  It is
the driver as shipped, not a hard ceiling: before every ``basic_publish`` it
polls the socket (``drain_events(timeout=0)``, as RabbitMQ announces
``connection.blocked``) and it reads each frame with several ``recv`` calls;
this project's transport avoids both, so ours/raw can exceed 1.  Only a
RabbitMQ on the loopback interface is accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

KOMBU_PYTHON = Path(__file__).resolve().parent.parent / ".venv-kombu" / "bin" / "python"
SIZES = (100, 10_000)
METRICS = ("publish", "consume_ack")
PREFETCH = 100
#: Messages per ``basic_ack(multiple=True)`` of the raw-batch reference.
ACK_BATCH = 50
#: The sides of the comparison, in table order, and their labels.
SIDES = ("ours", "kombu", "raw", "raw-batch")
LABELS = {"ours": "ours", "kombu": "kombu 5.x", "raw": "raw py-amqp (ack each)",
          "raw-batch": f"raw py-amqp (ack multiple=True per {ACK_BATCH})"}
#: Seconds one drain_events call may wait for a message.
DRAIN_TIMEOUT = 5.0
#: Properties of every message: what kombu's Producer sends for a str body with
#: serializer="raw" (raw py-amqp sends the same).
PROPERTIES = {"content_type": "application/data", "content_encoding": "utf-8",
              "delivery_mode": 2, "priority": 0}


def time_limit(n: int) -> float:
    """Seconds one side may take for one size (publish + consume of ``n`` messages)."""
    return 60.0 + n / 50


def consume_deadline(n: int) -> float:
    """Seconds one consume loop of ``n`` messages may take."""
    return 30.0 + n / 100


@contextmanager
def watchdog(seconds: float, what: str) -> Iterator[None]:
    """Raise TimeoutError if the block runs longer than ``seconds`` (where SIGALRM exists)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what} took longer than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def wait_for_messages(count: Callable[[], int], n: int, deadline: float) -> None:
    """Poll ``count()`` until the broker holds ``n`` messages (before consume is timed)."""
    while True:
        have = count()
        if have >= n:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the queue holds {have} of {n} published messages")
        time.sleep(0.01)


def bench_kombu_api(url: str, n: int, size: int) -> dict[str, float]:
    """Messages per second through the kombu API of whichever kombu is imported."""
    from kombu import Connection, Consumer, Producer, Queue

    body = "x" * size
    name = f"bench-{uuid.uuid4().hex[:8]}"
    results: dict[str, float] = {}
    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        queue = Queue(name, durable=False, channel=channel)
        queue.declare()
        try:
            producer = Producer(channel)
            start = time.perf_counter()
            for _ in range(n):
                producer.publish(body, routing_key=name, serializer="raw")
            results["publish"] = n / (time.perf_counter() - start)

            wait_for_messages(lambda: queue.queue_declare(passive=True).message_count, n,
                              time.monotonic() + consume_deadline(n))
            got = [0]

            def on_message(b: Any, message: Any) -> None:
                got[0] += 1
                message.ack()

            with Consumer(channel, [queue], callbacks=[on_message], prefetch_count=PREFETCH):
                deadline = time.monotonic() + consume_deadline(n)
                start = time.perf_counter()
                while got[0] < n:
                    conn.drain_events(timeout=DRAIN_TIMEOUT)
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"consumed {got[0]} of {n} messages in time")
                results["consume_ack"] = n / (time.perf_counter() - start)
        finally:
            queue.delete()
    return results


def amqp_params(url: str) -> dict[str, Any]:
    """py-amqp Connection arguments for an ``amqp://user:password@host:port/vhost`` URL."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return {"host": f"{host}:{parts.port or 5672}", "userid": unquote(parts.username or "guest"),
            "password": unquote(parts.password or "guest"), "virtual_host": vhost,
            "connect_timeout": 5}


def bench_raw(url: str, n: int, size: int, ack_batch: int = 1) -> dict[str, float]:
    """Messages per second with the ``amqp`` library directly.

    ``ack_batch`` > 1 acknowledges with ``multiple=True`` once per
    ``ack_batch`` messages (and once for the last, partial batch).
    """
    import amqp

    conn = amqp.Connection(**amqp_params(url))
    conn.connect()
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    body = b"x" * size
    results: dict[str, float] = {}
    try:
        channel = conn.channel()
        channel.queue_declare(name, durable=False, auto_delete=False)
        try:
            start = time.perf_counter()
            for _ in range(n):
                channel.basic_publish(amqp.Message(body, **PROPERTIES), exchange="",
                                      routing_key=name)
            results["publish"] = n / (time.perf_counter() - start)

            wait_for_messages(lambda: channel.queue_declare(name, passive=True).message_count,
                              n, time.monotonic() + consume_deadline(n))
            got = [0]

            def on_message(message: Any) -> None:
                got[0] += 1
                if ack_batch == 1:
                    channel.basic_ack(message.delivery_tag)
                elif got[0] % ack_batch == 0 or got[0] == n:
                    channel.basic_ack(message.delivery_tag, multiple=True)

            channel.basic_qos(0, PREFETCH, False)
            tag = channel.basic_consume(name, callback=on_message, no_ack=False)
            deadline = time.monotonic() + consume_deadline(n)
            start = time.perf_counter()
            while got[0] < n:
                conn.drain_events(timeout=DRAIN_TIMEOUT)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"consumed {got[0]} of {n} messages in time")
            results["consume_ack"] = n / (time.perf_counter() - start)
            channel.basic_cancel(tag)
        finally:
            channel.queue_delete(name)
    finally:
        conn.close()
    return results


def bench_ours(url: str, n: int, size: int) -> dict[str, float]:
    with watchdog(time_limit(n), "this project's run"):
        return bench_kombu_api(url, n, size)


def bench_raw_bounded(url: str, n: int, size: int) -> dict[str, float]:
    with watchdog(time_limit(n), "the raw py-amqp run"):
        return bench_raw(url, n, size)


def bench_raw_batch_bounded(url: str, n: int, size: int) -> dict[str, float]:
    with watchdog(time_limit(n), "the raw py-amqp batch-ack run"):
        return bench_raw(url, n, size, ack_batch=ACK_BATCH)


def kombu5_env() -> dict[str, str]:
    """The environment of kombu 5.x subprocesses: without PYTHONPATH (as bench/run.py),
    which could put this project's kombu ahead of kombu 5.x."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run_kombu(url: str, n: int, size: int) -> dict[str, float]:
    try:
        proc = subprocess.run([str(KOMBU_PYTHON), __file__, "--worker", "--url", url, "--n", str(n),
                               "--size", str(size)], capture_output=True, text=True,
                              timeout=time_limit(n) + 30, env=kombu5_env(),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        sys.exit(f"kombu 5.x worker did not finish within {time_limit(n) + 30:.0f} s")
    if proc.returncode != 0:
        sys.exit(f"kombu 5.x worker failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def versions(url: str) -> str:
    import amqp
    import kombu

    kombu_line = subprocess.run(
        [str(KOMBU_PYTHON), "-c", "import amqp, kombu; print(kombu.__version__, amqp.__version__)"],
        capture_output=True, text=True, timeout=60, check=True, env=kombu5_env(),
        stdin=subprocess.DEVNULL).stdout.split()
    conn = amqp.Connection(**amqp_params(url))
    conn.connect()
    try:
        server = conn.server_properties.get("version", "?")
    finally:
        conn.close()
    return (f"this project: kombu {kombu.__version__} (amqp {amqp.__version__}); "
            f"kombu {kombu_line[0]} (amqp {kombu_line[1]}); RabbitMQ {server} "
            f"at {urlsplit(url).hostname}:{urlsplit(url).port or 5672}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    parts = urlsplit(args.url)
    host = parts.hostname or ""
    if parts.scheme not in ("amqp", "pyamqp") or not (
            host.startswith("127.") or host in ("localhost", "::1")):
        sys.exit("benchmarks only run against a loopback RabbitMQ (amqp://...@127.0.0.1...)")
    if args.worker:
        import kombu

        if not kombu.__version__.startswith("5."):
            sys.exit(f"the kombu 5.x worker imported kombu {kombu.__version__} from "
                     f"{kombu.__file__}")
        with watchdog(time_limit(args.n), "the kombu 5.x run"):
            print(json.dumps(bench_kombu_api(args.url, args.n, args.size)))
        return
    if not KOMBU_PYTHON.exists():
        sys.exit(f"kombu 5.x not found: {KOMBU_PYTHON} is missing; create .venv-kombu beside "
                 f"bench/ with kombu 5.x and amqp installed to run this benchmark")
    print(versions(args.url))
    print("sides: " + "; ".join(f"{who} = {LABELS[who]}" for who in SIDES))
    runners: dict[str, Callable[[str, int, int], dict[str, float]]] = {
        "ours": bench_ours, "kombu": run_kombu, "raw": bench_raw_bounded,
        "raw-batch": bench_raw_batch_bounded}
    sides = tuple((who, runners[who]) for who in SIDES)
    others = SIDES[1:]
    for size in SIZES:
        samples: dict[str, dict[str, list[float]]] = {who: {} for who in SIDES}
        for rnd in range(args.rounds):
            shift = rnd % len(sides)
            for who, fn in sides[shift:] + sides[:shift]:
                result = fn(args.url, args.n, size)
                for metric, value in result.items():
                    samples[who].setdefault(metric, []).append(value)
        print(f"\nbody {size} bytes, {args.n} messages, median of {args.rounds} rounds (msg/s)")
        print(f"{'metric':<12}" + "".join(f"{who:>11}" for who in SIDES)
              + "".join(f"{'ours/' + who:>17}" for who in others)
              + "".join(f"{'med(ours/' + who + ')':>21}" for who in others))
        for metric in METRICS:
            series = {who: samples[who][metric] for who in SIDES}
            med = {who: statistics.median(values) for who, values in series.items()}
            per_round = {who: [o / x for o, x in zip(series["ours"], series[who])]
                         for who in others}
            print(f"{metric:<12}" + "".join(f"{med[who]:>11.0f}" for who in SIDES)
                  + "".join(f"{med['ours'] / med[who]:>16.2f}x" for who in others)
                  + "".join(f"{statistics.median(per_round[who]):>20.2f}x" for who in others))
        for metric in METRICS:
            series = {who: samples[who][metric] for who in SIDES}
            print(f"  {metric} per round: " + "   ".join(
                f"ours/{who}: " + " ".join(f"{o / x:.2f}" for o, x in zip(series["ours"], series[who]))
                for who in others))


if __name__ == "__main__":
    main()
