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
import statistics
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.cluster_outage import kill_a_master_while_consuming
from helpers.redis_cluster import LocalCluster

OPTIONS = {"replica_wait": 1, "replica_wait_timeout": 2.0, "visibility_timeout": 4,
           "unacked_restore_interval": 0.5}


def one_run(cluster: LocalCluster, loop: str, per_queue: int) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    counter = iter(range(10**6))
    run = kill_a_master_while_consuming(cluster, lambda: f"fo-{tag}-{next(counter)}", loop,
                                        OPTIONS, per_queue, timeout=120)
    return {
        "resume": run.resumed_after(),
        "gap": run.longest_other_gap(),
        "others": float(len(run.others_meanwhile())),
        "errors": float(len(run.errors)),
        "lost": float(len(run.lost())),
        "unflagged": float(len(run.unflagged_duplicates())),
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
