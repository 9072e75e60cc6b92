"""Bounded draining of a kombu Connection, shared by the broker test suites."""

from __future__ import annotations

import socket
import time
from typing import Any


def drain_until(conn: Any, got: list[Any], n: int, timeout: float = 10.0) -> None:
    """Drain events until ``got`` holds ``n`` items (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while len(got) < n:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"received {len(got)} of {n} messages within {timeout}s"
        try:
            conn.drain_events(timeout=min(remaining, 1.0))
        except socket.timeout:
            pass


def is_quiet(conn: Any, seconds: float = 0.3) -> bool:
    """True if no event arrives on ``conn`` within ``seconds``."""
    try:
        conn.drain_events(timeout=seconds)
    except socket.timeout:
        return True
    return False


def turn(conn: Any, hub: Any = None, timeout: float = 1.0) -> BaseException | None:
    """One turn of consuming on ``conn``: ``hub.run_once()`` if ``hub`` is given,
    else ``conn.drain_events(timeout)``.  A recoverable connection error raised
    is returned (the same Connection goes on, as an application would), a
    timeout is not an error."""
    try:
        if hub is not None:
            hub.run_once()
        else:
            conn.drain_events(timeout=timeout)
    except socket.timeout:
        pass
    except conn.recoverable_connection_errors as exc:
        return exc  # type: ignore[no-any-return]
    return None
