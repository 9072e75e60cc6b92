"""Keeping the records of held messages fresh, so live consumers keep them.

A restorer takes the records older than ``visibility_timeout``.  While a
process holds recorded messages (fetched, or delivered and not acked), a
thread of its own (:class:`Refresher`) sets their index score to the current
time every quarter of the visibility timeout, however long a callback runs
or the application goes without draining events; so only the messages of
processes that died (or lost Redis) are restored.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterable
from itertools import chain
from time import time
from typing import Any, Callable, Protocol

from kombu_redis.acks import ACK_CHUNK

__all__ = ("MIN_REFRESH_PERIOD", "REFRESHER_JOIN_TIMEOUT", "Holder", "Refresher",
           "refresh_commands")

logger = logging.getLogger("kombu.transport.redis")

#: The refresher's shortest period (seconds), whatever the visibility timeout.
MIN_REFRESH_PERIOD = 0.05
#: Seconds close waits for the refresher thread to end.
REFRESHER_JOIN_TIMEOUT = 5.0


class Holder(Protocol):
    """What the refresher needs of a channel."""

    visibility_timeout: float

    def held_tags(self) -> list[Any]:
        """The record fields of the messages held now (safe from another thread)."""

    def refresh_held(self, tags: list[Any]) -> None:
        """Set the index score of ``tags`` to now (thread-safe)."""


def refresh_commands(index: str, tags: list[Any], now: float | None = None) -> list[tuple[Any, ...]]:
    """``ZADD index XX`` commands setting the score of ``tags`` to ``now``
    (only tags still recorded), ACK_CHUNK tags each."""
    score = repr(time() if now is None else now)
    return [("ZADD", index, "XX", *chain.from_iterable((score, t) for t in tags[i:i + ACK_CHUNK]))
            for i in range(0, len(tags), ACK_CHUNK)]


class Refresher:
    """Refreshes the records the holders of one transport hold.

    ``holders()`` returns the holders (channels) to look at now.  The thread
    runs while one of them holds recorded messages: it ends when nothing is
    held (started again by :meth:`ensure`, called after each fetch that
    recorded messages), on :meth:`stop`, or when ``holders`` returns None
    (its transport is gone); it does not survive a fork.
    """

    _all: weakref.WeakSet[Refresher] = weakref.WeakSet()

    def __init__(self, holders: Callable[[], Iterable[Holder] | None]) -> None:
        self._holders = holders
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._all.add(self)

    @property
    def running(self) -> bool:
        """Whether the refresher thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def ensure(self) -> None:
        """Start the thread unless it runs (call after recording messages)."""
        with self._lock:
            thread = self._thread
            if thread is not None and thread.is_alive() and not self._stop.is_set():
                return
            self._stop = stop = threading.Event()
            self._thread = thread = threading.Thread(
                target=self._run, args=(stop,), name="kombu-redis-refresher", daemon=True)
            thread.start()

    def stop(self) -> None:
        """End the thread (bounded wait); a later ensure() starts a new one."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(REFRESHER_JOIN_TIMEOUT)

    def _period(self) -> float:
        """A quarter of the shortest visibility timeout of the holders."""
        timeouts = [h.visibility_timeout for h in self._holders() or ()]
        return max(min(timeouts, default=0) / 4, MIN_REFRESH_PERIOD)

    def work(self, stop: threading.Event | None = None) -> list[tuple[Holder, list[Any]]] | None:
        """The held tags of each holder; None (thread forgotten) if none holds any.

        Runs under the lock that ensure() takes, so a fetch that happens
        after this found nothing finds no thread and starts one.
        """
        with self._lock:
            holders = self._holders()
            if holders is None or (stop is not None and stop.is_set()):
                return None
            work = []
            for holder in list(holders):
                tags = holder.held_tags()
                if tags:
                    work.append((holder, tags))
            if not work:
                if self._thread is threading.current_thread():
                    self._thread = None
                return None
            return work

    def refresh_once(self, work: list[tuple[Holder, list[Any]]], failing: bool = False) -> bool:
        """Refresh each holder's tags; whether it failed (logged, tried next period)."""
        for holder, tags in work:
            try:
                holder.refresh_held(tags)
            except Exception as exc:  # noqa: BLE001 - tried again next period
                (logger.debug if failing else logger.warning)(
                    "Could not refresh the visibility of %d held message(s): %r",
                    len(tags), exc)
                failing = True
            else:
                failing = False
        return failing

    def _run(self, stop: threading.Event) -> None:
        failing = False
        while not stop.wait(self._period()):
            work = self.work(stop)
            if work is None:
                return
            failing = self.refresh_once(work, failing)
            del work


def _after_fork_in_child() -> None:
    for refresher in list(Refresher._all):
        refresher._lock = threading.Lock()
        refresher._thread = None
        refresher._stop = threading.Event()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
