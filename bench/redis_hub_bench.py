"""Redis consuming under the event loop: this project vs kombu 5.x.

    python bench/redis_hub_bench.py [--url redis://127.0.0.1:6379/1] [--n 5000] [--rounds 5]

Each round runs, in fresh subprocesses and alternating, this project
(this interpreter) and kombu 5.x (``.venv-kombu/bin/python`` beside this
directory) on the same measures, and prints medians and ratios (above 1:
this project is faster).  ``n`` messages are queued first, then consumed
and acknowledged; the time ends when the last message was delivered (its
ack given):

* ``hub_ack``: registered with the Hub (``register_with_event_loop``), driven
  by ``hub.run_once()``, acked in the callback, prefetch 100;
* ``hub_deferred_ack``: the same, acked on the next turn of the loop
  (``hub.call_soon``), as Celery's prefork pool acks, prefetch 8;
* ``drain_ack``: the blocking ``drain_events`` path, acked in the callback,
  prefetch 100;
* ``hub_live``: a publisher thread sends while the hub consumes (prefetch 8),
  measured from the first publish to the last ack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

KOMBU_PYTHON = Path(__file__).resolve().parent.parent / ".venv-kombu" / "bin" / "python"
MEASURES = ("hub_ack", "hub_deferred_ack", "drain_ack", "hub_live")
#: Seconds any one measure may take.
LIMIT = 120.0


def _fill(conn: Any, name: str, n: int) -> Any:
    from kombu import Producer, Queue

    queue = Queue(name)
    producer = Producer(conn.channel())
    producer.publish("x" * 100, routing_key=name, declare=[queue], serializer="raw")
    queue(conn.default_channel).purge()
    for i in range(n):
        producer.publish(str(i), routing_key=name, serializer="raw")
    return queue


def _run_hub(hub: Any, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + LIMIT
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("the hub did not finish in time")
        hub.run_once()


def measure(url: str, n: int, what: str) -> float:
    """Messages per second consumed and acked, for one measure."""
    from kombu import Connection, Consumer, Producer, Queue
    from kombu.asynchronous import Hub

    name = f"hubbench-{uuid.uuid4().hex[:8]}"
    got = [0]
    with Connection(url) as conn, Connection(url) as pub:
        hub = Hub() if what.startswith("hub") else None
        try:
            if what == "hub_live":
                queue = Queue(name)
                queue(pub.default_channel).declare()
            else:
                queue = _fill(pub, name, n)
            prefetch = 8 if what in ("hub_deferred_ack", "hub_live") else 100

            def on_message(body: Any, message: Any) -> None:
                got[0] += 1
                if what == "hub_deferred_ack":
                    hub.call_soon(message.ack)
                else:
                    message.ack()

            if hub is not None:
                conn.transport.register_with_event_loop(conn.connection, hub)
            with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=prefetch):
                start = time.perf_counter()
                if what == "hub_live":
                    def publish() -> None:
                        producer = Producer(pub)
                        for i in range(n):
                            producer.publish(str(i), routing_key=name, serializer="raw")

                    thread = threading.Thread(target=publish, daemon=True)
                    thread.start()
                    _run_hub(hub, lambda: got[0] >= n)
                    thread.join(LIMIT)
                elif hub is not None:
                    _run_hub(hub, lambda: got[0] >= n)
                else:
                    deadline = time.monotonic() + LIMIT
                    while got[0] < n:
                        if time.monotonic() > deadline:
                            raise RuntimeError("drain_events did not finish in time")
                        conn.drain_events(timeout=5)
                elapsed = time.perf_counter() - start
                if hub is not None:  # untimed: the last acks go out on the next turns
                    hub.call_soon(lambda: None)  # (a turn that does not wait in poll)
                    hub.run_once()
                    hub.run_once()
            queue(pub.default_channel).delete()
        finally:
            if hub is not None:
                hub.close()
    return n / elapsed


def run(python: Path | str, url: str, n: int, what: str) -> float | None:
    """One measure in a fresh ``python`` process."""
    out = subprocess.run([str(python), __file__, "--worker", what, "--url", url, "--n", str(n)],
                         capture_output=True, text=True, timeout=LIMIT + 60)
    if out.returncode != 0:
        print(f"  {python}: {what} failed: {out.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/1")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", choices=MEASURES)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps({"rate": measure(args.url, args.n, args.worker)}))
        return
    if not KOMBU_PYTHON.exists():
        sys.exit(f"{KOMBU_PYTHON} is missing: run ./dev bench once to create .venv-kombu")
    results: dict[str, dict[str, list[float]]] = {m: {"ours": [], "kombu": []} for m in MEASURES}
    for r in range(args.rounds):
        for what in MEASURES:
            order = [("ours", sys.executable), ("kombu", KOMBU_PYTHON)]
            if r % 2:
                order.reverse()
            line = []
            for who, python in order:
                rate = run(python, args.url, args.n, what)
                if rate is not None:
                    results[what][who].append(rate)
                    line.append(f"{who} {rate:,.0f}/s")
            print(f"round {r + 1} {what:17s} " + "  ".join(line), flush=True)
    print(f"\nmedians (messages/s consumed and acked, n={args.n}, {args.rounds} rounds)")
    print(f"{'measure':18s} {'kombu-core':>12s} {'kombu 5.x':>12s} {'ratio':>7s}")
    for what in MEASURES:
        ours, theirs = results[what]["ours"], results[what]["kombu"]
        if not ours or not theirs:
            print(f"{what:18s} (failed)")
            continue
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{what:18s} {a:12,.0f} {b:12,.0f} {a / b:7.2f}")
    ours_hub = results["hub_ack"]["ours"]
    ours_drain = results["drain_ack"]["ours"]
    if ours_hub and ours_drain:
        print(f"\nkombu-core hub_ack / drain_ack: "
              f"{statistics.median(ours_hub) / statistics.median(ours_drain):.2f}")


if __name__ == "__main__":
    main()
