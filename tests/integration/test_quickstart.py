"""The README's first command runs the seed examples: they must keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_quickstart_runs_the_seed_examples() -> None:
    proc = subprocess.run([sys.executable, str(QUICKSTART)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "hello" in out
    assert "'transport': 'amqp'" in out or '"transport": "amqp"' in out
