"""Run the installed ``kombu`` console script in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from helpers.processes import run

__all__ = ["KOMBU", "kombu"]

#: The console script pip installed next to this interpreter.
KOMBU = str(Path(sys.executable).with_name("kombu"))


def kombu(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0,
          secret: str | None = None) -> subprocess.CompletedProcess[str]:
    """``kombu args...``; with ``secret``, assert it appears in neither output stream."""
    proc = run([KOMBU, *args], env=env, timeout=timeout, check=False)
    if secret is not None:
        assert secret not in proc.stdout and secret not in proc.stderr, (
            f"the password was printed by kombu {' '.join(args[:1])}")
    return proc
