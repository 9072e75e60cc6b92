"""Celery programs (worker, beat, events) as bounded subprocesses for tests.

Each program runs in a session of its own, so that stopping it reaches the
prefork pool's children too; its output goes to a log file that tests read
(``wait_for``) and print when they fail.  ``stop`` is bounded: after its
timeout the whole process group is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Seconds a worker may take to log that it is ready.
START_TIMEOUT = 60.0
#: Seconds a program may take to exit after a signal before it is killed.
STOP_TIMEOUT = 30.0


class CeleryProcess:
    """One ``celery`` command line running in the background."""

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: str,
                 log_dir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv, env={**os.environ, **env}, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self, since: int = 0) -> str:
        """The program's output so far (from byte ``since`` on)."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def wait_for(self, text: str, timeout: float = START_TIMEOUT, since: int = 0) -> None:
        """Wait until ``text`` appears in the output; fail with the log if it does not."""
        deadline = time.monotonic() + timeout
        while text not in self.log(since):
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} before "
                                     f"printing {text!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not print {text!r} within {timeout}s:\n"
                                     f"{self.log()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, signum: int) -> None:
        """Send ``signum`` to the program's main process."""
        if self.alive():
            self.proc.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the main process to exit; fail with the log after ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout}s:\n{self.log()}"
                                 ) from None

    def kill(self) -> None:
        """SIGKILL the program and every process of its session."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
            pass
        self._log.close()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Ask the program to stop; kill its session if it has not after ``timeout``.

        Returns the exit code, or None if it had to be killed.  Leftover
        children (a prefork pool whose parent died) are killed either way.
        """
        code: int | None = None
        if self.alive():
            self.proc.send_signal(signum)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                code = None
        else:
            code = self.proc.returncode
        self.kill()
        return code


def celery_argv(python: str = sys.executable) -> list[str]:
    """The ``celery`` command of the interpreter ``python``."""
    return [python, "-m", "celery"]
