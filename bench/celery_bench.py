"""Celery 5.7 on this project against Celery on real kombu 5.x, side by side.

    ./dev bench --workload celery [--n 2000] [--reps 5] [--brokers redis,amqp]
                                  [--pools solo,prefork]

For each broker (Redis database 8; on RabbitMQ a virtual host of its own,
``celery-bench-...``, deleted afterwards) and pool (``-P solo``; ``-P prefork
-c 2``), every repetition runs one round per side, alternating which side
goes first.  A round starts a worker (gossip, mingle and heartbeats on, as
by default), waits until it is ready, then a client of the same side sends
``--n`` no-op tasks (``ignore_result``).  Each task appends its completion
time to a file, so the round yields:

* end-to-end tasks/s: n / (last completion - first send);
* publish rate: n / time to send them all;
* the longest gap between two consecutive completions ("stall"), which
  shows a worker that sits idle while messages wait.

This project's side runs under ``.venv``, kombu's under
``.venv-celery-kombu`` (celery==5.7.0, kombu[redis]==5.7.0).  Prints every
round, then the medians and the ratio of medians (above 1: this project is
faster) per configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REDIS_URL = "redis://127.0.0.1:6379/8"
AMQP_BASE = "amqp://guest:guest@127.0.0.1:5672"
READY_TIMEOUT = 60.0
#: Bound on one round's tasks: past it the round is recorded as failed.
ROUND_TIMEOUT = 300.0
STOP_TIMEOUT = 20.0

CLIENT = r"""
import json, sys, time
from celery_bench_app import app, noop
n = int(sys.argv[1])
with app.producer_or_acquire() as producer:
    noop.apply_async(producer=producer)  # connects and declares, outside the timing
    start = time.time()
    for _ in range(n):
        noop.apply_async(producer=producer)
    sent = time.time()
print(json.dumps({"start": start, "sent": sent}))
"""

VERSIONS = ("import json, celery, kombu; "
            "print(json.dumps([celery.__version__, kombu.__version__]))")


@dataclass
class Side:
    label: str
    python: Path
    rounds: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)


def rabbitmqctl(*args: str) -> None:
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        raise SystemExit("rabbitmqctl is not installed: it is needed for a vhost of the "
                         "benchmark's own (or pass --brokers redis)")
    subprocess.run([binary, *args], check=True, capture_output=True, timeout=60)


def one_round(side: Side, broker_url: str, pool: str, n: int, work: Path) -> dict[str, float]:
    """Start a worker, send n tasks from a client, wait for all; return the numbers."""
    tag = uuid.uuid4().hex[:8]
    out, ready = work / f"out-{tag}", work / f"ready-{tag}"
    env = {**os.environ, "CB_BROKER": broker_url, "CB_QUEUE": f"cb-{tag}",
           "CB_CONTROL": f"cb-control-{tag}", "CB_EVENTS": f"cb-events-{tag}",
           "CB_OUT": str(out), "CB_READY": str(ready), "PYTHONPATH": str(HERE)}
    pool_args = ["-P", "solo"] if pool == "solo" else ["-P", "prefork", "-c", "2"]
    log = open(work / f"worker-{tag}.log", "wb")
    worker = subprocess.Popen(
        [str(side.python), "-m", "celery", "-A", "celery_bench_app", "worker", "-l", "warning",
         "-n", f"cb-{tag}@%h", *pool_args], env=env, cwd=str(work),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.exists():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready: {(work / f'worker-{tag}.log').read_text()[-3000:]}")
            time.sleep(0.02)
        client = subprocess.run([str(side.python), "-c", CLIENT, str(n)], env=env,
                                cwd=str(work), capture_output=True, text=True,
                                timeout=ROUND_TIMEOUT)
        if client.returncode != 0:
            raise RuntimeError(f"client failed: {client.stderr[-3000:]}")
        times = json.loads(client.stdout)
        want = (n + 1) * 8
        deadline = time.monotonic() + ROUND_TIMEOUT
        while not out.exists() or out.stat().st_size < want:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{out.stat().st_size // 8 if out.exists() else 0} of {n + 1} "
                                   f"tasks done: {(work / f'worker-{tag}.log').read_text()[-3000:]}")
            time.sleep(0.002)
        done = sorted(struct.unpack(f"{n + 1}d", out.read_bytes()[:want]))
    finally:
        try:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(STOP_TIMEOUT)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.wait(10)
        log.close()
    timed = [t for t in done if t >= times["start"]] or done
    gaps = [b - a for a, b in zip([times["start"], *timed], timed)]
    return {"e2e": n / (done[-1] - times["start"]),
            "publish": n / (times["sent"] - times["start"]),
            "stall": max(gaps)}


def cleanup_redis(python: Path) -> None:
    """Delete the benchmark's keys from database 8 (its queues and bindings only)."""
    code = (f"import redis; r = redis.Redis.from_url({REDIS_URL!r})\n"
            "for pattern in ('cb-*', '*cb-control-*', '_kombu.binding.*cb-*'):\n"
            "    keys = [k for k in r.scan_iter(pattern)]\n"
            "    keys and r.delete(*keys)\n")
    subprocess.run([str(python), "-c", code], timeout=60, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="tasks per round (default 2000)")
    parser.add_argument("--reps", type=int, default=5, help="rounds per side and configuration")
    parser.add_argument("--brokers", default="redis,amqp")
    parser.add_argument("--pools", default="solo,prefork")
    parser.add_argument("--project-python", type=Path, default=ROOT / ".venv" / "bin" / "python")
    parser.add_argument("--kombu-python", type=Path,
                        default=ROOT / ".venv-celery-kombu" / "bin" / "python")
    parser.add_argument("--sides", default="project,kombu",
                        help="which sides to run (project, kombu or both)")
    args = parser.parse_args(argv)

    sides = [s for s in (Side("kombu-core", args.project_python),
                         Side("kombu 5.x", args.kombu_python))
             if ("project" if s.label == "kombu-core" else "kombu") in args.sides.split(",")]
    for side in sides:
        versions = subprocess.run([str(side.python), "-c", VERSIONS], capture_output=True,
                                  text=True, timeout=60)
        print(f"{side.label}: {side.python} celery/kombu {versions.stdout.strip()}", flush=True)

    vhost = None
    configs: list[tuple[str, str, str]] = []
    brokers = args.brokers.split(",")
    if "amqp" in brokers:
        vhost = f"celery-bench-{uuid.uuid4().hex[:8]}"
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    for broker in brokers:
        url = REDIS_URL if broker == "redis" else f"{AMQP_BASE}/{vhost}"
        for pool in args.pools.split(","):
            configs.append((f"{broker} {pool}", url, pool))

    work = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    try:
        for rep in range(args.reps):
            for name, url, pool in configs:
                order = sides if rep % 2 == 0 else sides[::-1]
                for side in order:
                    try:
                        result = one_round(side, url, pool, args.n, work)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        side.failures.setdefault(name, []).append(str(exc)[-500:])
                        print(f"rep {rep + 1} {name:14} {side.label:10} FAILED: {exc}"[:600],
                              flush=True)
                        continue
                    side.rounds.setdefault(name, []).append(result)
                    print(f"rep {rep + 1} {name:14} {side.label:10} e2e {result['e2e']:8.0f} "
                          f"tasks/s  publish {result['publish']:8.0f}/s  "
                          f"longest gap {result['stall']:6.3f} s", flush=True)
    finally:
        if "redis" in brokers:
            cleanup_redis(sides[0].python)
        if vhost:
            rabbitmqctl("delete_vhost", vhost)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmedians of {args.reps} rounds, {args.n} no-op tasks (ignore_result); "
          "ratio = kombu-core / kombu 5.x (above 1: kombu-core faster; for the gap, below 1)")
    header = f"{'configuration':16}{'metric':18}" + "".join(f"{s.label:>14}" for s in sides)
    print(header + ("       ratio" if len(sides) == 2 else ""))
    failed = False
    for name, _, _ in configs:
        for metric, label in (("e2e", "end-to-end /s"), ("publish", "publish /s"),
                              ("stall", "longest gap s")):
            values = []
            for side in sides:
                got = [r[metric] for r in side.rounds.get(name, [])]
                values.append(statistics.median(got) if got else None)
            cells = "".join(f"{v:14.3f}" if metric == "stall" and v is not None else
                            f"{v:14.0f}" if v is not None else f"{'failed':>14}"
                            for v in values)
            ratio = ""
            if len(values) == 2 and None not in values and values[1]:
                ratio = f"{values[0] / values[1]:12.2f}"  # type: ignore[operator]
            print(f"{name:16}{label:18}{cells}{ratio}")
        for side in sides:
            if side.failures.get(name):
                failed = True
                print(f"  {side.label}: {len(side.failures[name])} round(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
