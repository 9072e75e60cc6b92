"""How fast the ``kombu`` command answers (wall time of the whole process).

    .venv/bin/python bench/cli.py [--reps 10] [--redis-url redis://127.0.0.1:6379/14]
                                  [--amqp-url amqp://guest:guest@127.0.0.1:5672//]

Runs each command ``--reps`` times as a fresh process (the console script
next to this interpreter) and prints the minimum, median and maximum wall
time in milliseconds, with ``python -c "import kombu"`` as the floor every
command pays.  Pass an empty URL to leave a broker out.  kombu 5.x has no
such command, so there is nothing to compare with.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

KOMBU = str(Path(sys.executable).with_name("kombu"))
TIMEOUT = 60.0


def wall_ms(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{argv!r} exited with {proc.returncode}: {proc.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()
    cases = [
        ('python -c "import kombu"', [sys.executable, "-c", "import kombu"]),
        ("kombu --version", [KOMBU, "--version"]),
        ("kombu transports --no-load", [KOMBU, "transports", "--no-load"]),
        ("kombu transports", [KOMBU, "transports"]),
        ("kombu check memory://", [KOMBU, "check", "memory://"]),
    ]
    if args.redis_url:
        cases.append(("kombu check redis://", [KOMBU, "check", args.redis_url]))
    if args.amqp_url:
        cases.append(("kombu check amqp://", [KOMBU, "check", args.amqp_url]))
    for argv in (argv for _, argv in cases):  # warm the file cache and byte code
        wall_ms(argv)
    width = max(len(title) for title, _ in cases)
    print(f"{'command':<{width}}  {'min':>7}  {'median':>7}  {'max':>7}  (ms, {args.reps} runs)")
    for title, argv in cases:
        samples = [wall_ms(argv) for _ in range(args.reps)]
        print(f"{title:<{width}}  {min(samples):7.1f}  {statistics.median(samples):7.1f}  "
              f"{max(samples):7.1f}")


if __name__ == "__main__":
    main()
