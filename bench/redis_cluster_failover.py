"""What a master failover does to one consumer on a Redis Cluster, measured.

    python bench/redis_cluster_failover.py [--runs 3] [--per-queue 400]

Starts its own clusters (six redis-server processes on loopback, see
tests/helpers/redis_cluster.py): one with Redis's default
``cluster-require-full-coverage yes`` and one with ``no``.  Per run: six
queues (two per master) get a backlog of ``--per-queue`` messages each; one
consumer (prefetch 20, 2 ms of work per message, ``replica_wait=1`` on both
sides) works through it with ``drain_events`` or under the Hub; after 300
deliveries one master is SIGKILLed and its replica takes over.

Reported per configuration (medians over the runs; max for errors, lost and
unflagged duplicates):

- *dead master's queues resume*: seconds from the kill to the next delivery
  from a queue of the killed master (the failover, as the consumer sees it);
- *other masters' longest gap*: the longest pause between two deliveries from
  the other masters' queues during that time;
- *other deliveries*: messages of the other masters delivered meanwhile;
- errors that reached the application, messages lost, duplicates not
  flagged redelivered.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.redis_cluster import LocalCluster, names_on_every_master

OPTIONS = {"replica_wait": 1, "replica_wait_timeout": 2.0, "visibility_timeout": 4,
           "unacked_restore_interval": 0.5}


def one_run(cluster: LocalCluster, loop: str, per_queue: int) -> dict[str, float]:
    from kombu import Connection, Consumer, Producer, Queue
    from kombu.asynchronous import Hub

    cluster.wait_ok()
    cluster.wait_synced()
    tag = uuid.uuid4().hex[:8]
    counter = iter(range(10**6))
    owner = names_on_every_master(cluster, lambda: f"fo-{tag}-{next(counter)}", 2)
    names = list(owner)
    victim = owner[names[0]]
    victims = {n for n in names if owner[n] == victim}
    url = cluster.url()
    with Connection(url, transport_options=OPTIONS) as pub:
        producer = Producer(pub)
        for i in range(per_queue):
            for name in names:
                producer.publish({"q": name, "i": i}, routing_key=name,
                                 declare=[Queue(name)] if i == 0 else None)
    arrivals: list[tuple[float, str, int, bool]] = []
    ids: set[tuple[str, int]] = set()
    errors = 0
    hub = Hub() if loop == "hub" else None

    def on_message(body: Any, message: Any) -> None:
        arrivals.append((time.monotonic(), body["q"], body["i"],
                         bool(message.delivery_info.get("redelivered"))))
        ids.add((body["q"], body["i"]))
        message.ack()
        time.sleep(0.002)

    killed_at = 0.0
    try:
        with Connection(url, transport_options=OPTIONS) as conn:
            if hub is not None:
                conn.transport.register_with_event_loop(conn.connection, hub)
            with Consumer(conn, [Queue(n) for n in names], callbacks=[on_message],
                          prefetch_count=20):
                deadline = time.monotonic() + 120
                total = per_queue * len(names)
                while time.monotonic() < deadline:
                    if not killed_at and len(arrivals) >= 300:
                        killed_at = time.monotonic()
                        cluster.kill(victim)
                    if len(ids) >= total:
                        break
                    try:
                        if hub is not None:
                            hub.run_once()
                        else:
                            conn.drain_events(timeout=0.5)
                    except socket.timeout:
                        pass
                    except conn.recoverable_connection_errors:
                        errors += 1
        cluster.wait_failover(victim)
    finally:
        if hub is not None:
            hub.close()
        if cluster.node(victim).killed:
            cluster.revive(victim)
    back = min((t for t, q, _, _ in arrivals if q in victims and t > killed_at), default=0.0)
    others = [t for t, q, _, _ in arrivals if killed_at < t < back and q not in victims]
    before = [t for t, q, _, _ in arrivals if t <= killed_at and q not in victims][-1:]
    marks = before + others + [back]
    seen = [(q, i) for _, q, i, _ in arrivals]
    flagged = {(q, i) for _, q, i, r in arrivals if r}
    counts: dict[tuple[str, int], int] = {}
    for item in seen:
        counts[item] = counts.get(item, 0) + 1
    return {
        "resume": back - killed_at,
        "gap": max((b - a for a, b in zip(marks, marks[1:])), default=0.0),
        "others": float(len(others)),
        "errors": float(errors),
        "lost": float(per_queue * len(names) - len(set(seen))),
        "unflagged": float(sum(1 for k, n in counts.items() if n > 1 and k not in flagged)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-queue", type=int, default=400)
    args = parser.parse_args(argv)
    rows = []
    for coverage in ("yes", "no"):
        cluster = LocalCluster(server_args=("--cluster-require-full-coverage", coverage))
        cluster.start()
        try:
            for loop in ("drain_events", "hub"):
                runs = [one_run(cluster, loop, args.per_queue) for _ in range(args.runs)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                worst = {k: max(r[k] for r in runs) for k in ("errors", "lost", "unflagged")}
                rows.append((coverage, loop, med, worst))
                print(f"full-coverage {coverage}, {loop}: {runs}", file=sys.stderr, flush=True)
        finally:
            cluster.stop()
    print("| require-full-coverage | consumer | dead master's queues resume | other masters' "
          "longest gap | other deliveries meanwhile | errors | lost | unflagged dups |")
    print("|---|---|---|---|---|---|---|---|")
    for coverage, loop, med, worst in rows:
        print(f"| {coverage} | {loop} | {med['resume']:.2f} s | {med['gap']:.2f} s | "
              f"{med['others']:.0f} | {worst['errors']:.0f} | {worst['lost']:.0f} | "
              f"{worst['unflagged']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
