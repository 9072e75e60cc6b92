"""Compare this project with real kombu 5.x on the same workloads.

    ./dev bench [--url memory://] [--n 20000] [--reps 5]
    ./dev bench --workload pools [--redis-url redis://127.0.0.1:6379/13] [--threads 16]

Runs ``bench/workloads.py`` (``--workload messaging``, the default) or
``bench/pools.py`` (``--workload pools``; ``all`` runs both) as a subprocess
under this project's ``.venv`` and under ``.venv-kombu`` (real kombu 5.x),
alternating the two sides within every repetition (and which side goes
first), then prints, per workload, each repetition's numbers and ratio, both
medians and the ratio of medians.  A ratio above 1 means this project is
faster.  If one side fails, the other side's numbers are still printed and
the exit status is 1.  The pool workloads also run on ``--redis-url`` (pass
``''`` to leave it out); a side that cannot connect there skips it and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = Path(__file__).resolve().parent / "workloads.py"
POOLS = Path(__file__).resolve().parent / "pools.py"
#: Bound on one workload subprocess, in seconds.
TIMEOUT = 900.0

#: Result name -> (title, unit, True if higher is better).
RESULTS: dict[str, tuple[str, str, bool]] = {
    "publish": ("publish: one Producer, direct exchange", "msgs/s", True),
    "consume": ("consume: one Consumer, prefetch 100, ack each", "msgs/s", True),
    "simple": ("SimpleQueue: put, then get + ack", "rounds/s", True),
    "import": ('python -c "import kombu" (wall)', "ms", False),
    "first_connect": ("import kombu + first Connection('memory://').connect()", "ms", False),
    "pool_connections_1t": ("pools.connections[conn].acquire() + release, 1 thread",
                            "cycles/s", True),
    "pool_connections_Nt": ("pools.connections[conn].acquire() + release, {threads} threads",
                            "cycles/s", True),
    "pool_producers_1t": ("pools.producers[conn].acquire() + release, 1 thread",
                          "cycles/s", True),
    "pool_producers_Nt": ("pools.producers[conn].acquire() + release, {threads} threads",
                          "cycles/s", True),
    "ensure_connection": ("conn.ensure_connection() when already connected", "calls/s", True),
}
#: A result is filed under its workload and its URL (None for startup).
Key = tuple[str, "str | None"]


@dataclass
class Side:
    label: str
    python: Path
    results: dict[Key, list[float]] = field(default_factory=dict)
    versions: set[str] = field(default_factory=set)
    baseline: list[float] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def fail(self, error: str) -> None:
        """Record why this side cannot run; it is not run again."""
        self.error = error
        print(f"  {self.label} side failed, continuing without it: {error}", flush=True)

    def run(self, script: Path, argv: list[str]) -> None:
        """Run one workload invocation and record its results (or the failure)."""
        if self.error is not None:
            return
        command = f"{script.name} {' '.join(argv)}"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            proc = subprocess.run([str(self.python), str(script), *argv], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.fail(f"`{command}` did not finish within {TIMEOUT:.0f}s")
            return
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            self.fail(f"`{command}` failed: {tail[0]}")
            return
        for line in proc.stdout.splitlines():
            result = json.loads(line)
            name = result["workload"]
            if name == "skipped":
                self.skipped[result["url"]] = result["reason"]
                continue
            if result.get("threads", 1) > 1:
                name = name.replace(f"_{result['threads']}t", "_Nt")
            value = result["rate"] if RESULTS[name][2] else result["seconds"] * 1000
            self.results.setdefault((name, result.get("url")), []).append(value)
            self.versions.add(f"kombu {result['kombu']}, Python {result['python']}")
            if "baseline" in result:
                self.baseline.append(result["baseline"] * 1000)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _ratio(ours: float | None, theirs: float | None, higher_is_better: bool) -> str:
    if not ours or not theirs:
        return "-"
    return f"{(ours / theirs if higher_is_better else theirs / ours):.2f}x"


def report(project: Side, kombu: Side, url: str, threads: int) -> None:
    keys = sorted(dict.fromkeys([*project.results, *kombu.results]),
                  key=lambda key: (list(RESULTS).index(key[0]), key[1] != url))
    for key in keys:
        title, unit, higher = RESULTS[key[0]]
        ours, theirs = project.results.get(key, []), kombu.results.get(key, [])
        where = f" on {key[1]}" if key[1] not in (None, url) else ""
        print(f"\n{title.format(threads=threads)}{where} "
              f"({unit}, {'higher' if higher else 'lower'} is better)")
        print(f"  {'rep':<8}{'project':>14}{'kombu':>14}{'ratio':>10}")
        for i in range(max(len(ours), len(theirs))):
            a = ours[i] if i < len(ours) else None
            b = theirs[i] if i < len(theirs) else None
            print(f"  {i + 1:<8}{_fmt(a):>14}{_fmt(b):>14}{_ratio(a, b, higher):>10}")
        med_a = statistics.median(ours) if ours else None
        med_b = statistics.median(theirs) if theirs else None
        print(f"  {'median':<8}{_fmt(med_a):>14}{_fmt(med_b):>14}{_ratio(med_a, med_b, higher):>10}")
        paired = [a / b if higher else b / a for a, b in zip(ours, theirs)]
        if paired:
            print(f"  median of the per-repetition ratios: {statistics.median(paired):.2f}x")
    for side in (project, kombu):
        if side.baseline:
            print(f"\n{side.label}: python -c pass takes {statistics.median(side.baseline):.1f} ms "
                  "(included in the import wall time)")
        for skipped_url, reason in side.skipped.items():
            print(f"\n{side.label}: skipped {skipped_url}: {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=("messaging", "pools", "all"), default="messaging",
                        help="messaging: workloads.py (default); pools: pools.py; all: both")
    parser.add_argument("--url", default="memory://", help="broker URL (default memory://)")
    parser.add_argument("--n", type=int,
                        help="messages per messaging workload (default 20000), "
                             "cycles per pool workload (default 100000)")
    parser.add_argument("--threads", type=int, default=16,
                        help="threads of the threaded pool workloads (default 16)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13",
                        help="second URL of the pool workloads ('' for none)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per side")
    parser.add_argument("--samples", type=int, default=5,
                        help="fresh interpreters per startup measurement")
    parser.add_argument("--project-python", type=Path, default=ROOT / ".venv" / "bin" / "python")
    parser.add_argument("--kombu-python", type=Path,
                        default=ROOT / ".venv-kombu" / "bin" / "python")
    args = parser.parse_args(argv)

    project = Side("project", args.project_python)
    kombu = Side("kombu", args.kombu_python)
    for side in (project, kombu):
        if not side.python.exists():
            side.fail(f"no interpreter at {side.python} (./dev bench creates it)")
    invocations: list[tuple[Path, list[str]]] = []
    if args.workload in ("messaging", "all"):
        n = str(args.n or 20_000)
        invocations += [
            (WORKLOADS, ["messaging", "--url", args.url, "--n", n]),
            (WORKLOADS, ["simple", "--url", args.url, "--n", n]),
            (WORKLOADS, ["startup", "--samples", str(args.samples)]),
        ]
    if args.workload in ("pools", "all"):
        urls = ["--url", args.url]
        if args.redis_url and args.redis_url != args.url:
            urls += ["--url", args.redis_url]
        invocations.append((POOLS, [*urls, "--n", str(args.n or 100_000),
                                    "--threads", str(args.threads)]))
    print(f"workload={args.workload} url={args.url} n={args.n or 'default'} reps={args.reps}; "
          "sides alternate within each repetition", flush=True)
    for rep in range(args.reps):
        order = (project, kombu) if rep % 2 == 0 else (kombu, project)
        for script, argv in invocations:
            for side in order:
                side.run(script, argv)
        print(f"  repetition {rep + 1}/{args.reps} done", flush=True)

    for side in (project, kombu):
        versions = "; ".join(sorted(side.versions)) or "no results"
        print(f"{side.label:>8}: {versions} ({side.python})")
    report(project, kombu, args.url, args.threads)
    failed = [side for side in (project, kombu) if side.error is not None]
    for side in failed:
        print(f"\n{side.label} side FAILED: {side.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
