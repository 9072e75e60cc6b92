"""Compare this project with real kombu 5.x on the same workloads.

    ./dev bench [--url memory://] [--n 20000] [--reps 5]

Runs ``bench/workloads.py`` as a subprocess under this project's ``.venv``
and under ``.venv-kombu`` (real kombu 5.x), alternating the two sides within
every repetition (and which side goes first), then prints, per workload,
each repetition's numbers and ratio, both medians and the ratio of medians.
A ratio above 1 means this project is faster.  If one side fails, the other
side's numbers are still printed and the exit status is 1.
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
#: Bound on one workload subprocess, in seconds.
TIMEOUT = 900.0

#: Result name -> (title, unit, True if higher is better).
RESULTS: dict[str, tuple[str, str, bool]] = {
    "publish": ("publish: one Producer, direct exchange", "msgs/s", True),
    "consume": ("consume: one Consumer, prefetch 100, ack each", "msgs/s", True),
    "simple": ("SimpleQueue: put, then get + ack", "rounds/s", True),
    "import": ('python -c "import kombu" (wall)', "ms", False),
    "first_connect": ("import kombu + first Connection('memory://').connect()", "ms", False),
}


@dataclass
class Side:
    label: str
    python: Path
    results: dict[str, list[float]] = field(default_factory=dict)
    versions: set[str] = field(default_factory=set)
    baseline: list[float] = field(default_factory=list)
    error: str | None = None

    def fail(self, error: str) -> None:
        """Record why this side cannot run; it is not run again."""
        self.error = error
        print(f"  {self.label} side failed, continuing without it: {error}", flush=True)

    def run(self, argv: list[str]) -> None:
        """Run one workload invocation and record its results (or the failure)."""
        if self.error is not None:
            return
        command = f"workloads.py {' '.join(argv)}"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        try:
            proc = subprocess.run([str(self.python), str(WORKLOADS), *argv], cwd=ROOT, env=env,
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
            value = result["rate"] if RESULTS[name][2] else result["seconds"] * 1000
            self.results.setdefault(name, []).append(value)
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


def report(project: Side, kombu: Side) -> None:
    for name, (title, unit, higher) in RESULTS.items():
        ours, theirs = project.results.get(name, []), kombu.results.get(name, [])
        if not ours and not theirs:
            continue
        print(f"\n{title} ({unit}, {'higher' if higher else 'lower'} is better)")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="memory://", help="broker URL (default memory://)")
    parser.add_argument("--n", type=int, default=20_000, help="messages per workload")
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
    invocations = [
        ["messaging", "--url", args.url, "--n", str(args.n)],
        ["simple", "--url", args.url, "--n", str(args.n)],
        ["startup", "--samples", str(args.samples)],
    ]
    print(f"url={args.url} n={args.n} reps={args.reps}; "
          "sides alternate within each repetition", flush=True)
    for rep in range(args.reps):
        order = (project, kombu) if rep % 2 == 0 else (kombu, project)
        for invocation in invocations:
            for side in order:
                side.run(invocation)
        print(f"  repetition {rep + 1}/{args.reps} done", flush=True)

    for side in (project, kombu):
        versions = "; ".join(sorted(side.versions)) or "no results"
        print(f"{side.label:>8}: {versions} ({side.python})")
    report(project, kombu)
    failed = [side for side in (project, kombu) if side.error is not None]
    for side in failed:
        print(f"\n{side.label} side FAILED: {side.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
