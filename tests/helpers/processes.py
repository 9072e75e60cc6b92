"""Subprocesses and bounded waits for tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Callable

#: Default bound on one helper subprocess, in seconds.
PROCESS_TIMEOUT = 60.0


def run_python(code: str, *args: str, python: str = sys.executable,
               env: Mapping[str, str] | None = None, cwd: str | None = None,
               timeout: float = PROCESS_TIMEOUT, check: bool = True,
               ) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args...`` in a fresh interpreter and return its result.

    With ``check`` (the default) a non-zero exit raises ``AssertionError``
    carrying the process's output, so a failing test shows why.
    """
    return run([python, "-c", code, *args], env=env, cwd=cwd, timeout=timeout, check=check)


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
        timeout: float = PROCESS_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with text output captured, bounded by ``timeout`` seconds."""
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(list(argv), env=full_env, cwd=cwd, timeout=timeout,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{argv[0]} did not finish within {timeout}s: {argv!r}\n"
                             f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv!r} exited with {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
    return proc


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05,
               message: str = "condition") -> None:
    """Call ``predicate`` until it returns true; ``AssertionError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        time.sleep(interval)


def in_forked_child(check: Callable[[], None], timeout: float = 20.0) -> None:
    """Run ``check`` in a forked child; ``AssertionError`` with its error if it fails.

    The child never returns into the caller: it exits once ``check`` is done.
    A child still running after ``timeout`` seconds is killed.
    """
    import warnings

    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child)
        code = 1
        try:
            os.close(read_fd)
            check()
            code = 0
        except BaseException as exc:  # noqa: BLE001  (reported to the parent)
            os.write(write_fd, repr(exc).encode()[:4000])
        finally:
            os._exit(code)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(read_fd)
            raise AssertionError(f"the forked child did not finish within {timeout}s")
        time.sleep(0.01)
    with os.fdopen(read_fd, "rb") as pipe:
        error = pipe.read().decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, f"the forked child failed: {error}"
