"""The event loop's timer: callbacks kept in a heap ordered by due time (monotonic clock)."""

from __future__ import annotations

import heapq
import sys
from collections import namedtuple
from collections.abc import Iterator
from datetime import datetime, timezone, tzinfo
from functools import total_ordering, wraps
from time import monotonic
from time import time as _wall_time
from types import TracebackType
from typing import Any, Callable
from weakref import proxy

from kombu.log import get_logger

__all__ = ("Entry", "Timer", "to_timestamp")

logger = get_logger(__name__)

#: Longest wait, in seconds, that iterating a :class:`Timer` reports.
DEFAULT_MAX_INTERVAL = 2
EPOCH = datetime.fromtimestamp(0, timezone.utc)
IS_PYPY = hasattr(sys, "pypy_version_info")

#: One heap item: ``(eta, priority, entry)``; ``eta`` is on the monotonic clock.
scheduled = namedtuple("scheduled", ("eta", "priority", "entry"))


def to_timestamp(d: Any, default_timezone: tzinfo = timezone.utc,
                 time: Callable[[], float] = monotonic) -> Any:
    """Convert the datetime ``d`` to a time on the ``time`` clock (monotonic); other values pass.

    A naive datetime is read in ``default_timezone``.  A time in the past
    becomes ``0`` (due now).
    """
    if isinstance(d, datetime):
        if d.tzinfo is None:
            d = d.replace(tzinfo=default_timezone)
        offset = _wall_time() - time()
        return max((d - EPOCH).total_seconds() - offset, 0)
    return d


@total_ordering
class Entry:
    """A scheduled call of ``fun(*args, **kwargs)``; cancel it with :meth:`cancel`."""

    if not IS_PYPY:  # pragma: no branch
        __slots__ = ("fun", "args", "kwargs", "tref", "canceled", "_last_run", "__weakref__")

    def __init__(self, fun: Callable[..., Any], args: Any = None, kwargs: Any = None) -> None:
        self.fun = fun
        self.args = args or []
        self.kwargs = kwargs or {}
        #: A weak reference to this entry (what kombu hands out as ``tref``).
        self.tref: Any = proxy(self)
        self._last_run: float | None = None
        self.canceled = False

    def __call__(self) -> Any:
        return self.fun(*self.args, **self.kwargs)

    def cancel(self) -> None:
        """Make the timer skip this entry (a repeating entry stops repeating)."""
        try:
            self.tref.canceled = True
        except ReferenceError:  # pragma: no cover - only through a dead proxy
            pass

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (``canceled`` in kombu's spelling)."""
        return self.canceled

    @cancelled.setter
    def cancelled(self, value: bool) -> None:
        self.canceled = value

    def __lt__(self, other: Entry) -> bool:
        # Ties in (eta, priority) are broken by identity, never by hashing.
        return id(self) < id(other)

    def __repr__(self) -> str:
        name = getattr(self.fun, "__name__", repr(self.fun))
        return f"<TimerEntry: {name}(*{self.args!r}, **{self.kwargs!r})"


_Entry = Entry


class Timer:
    """A heap of :class:`Entry` objects that an event loop (or a thread) runs when due.

    Iterating the timer yields ``(seconds_to_wait, None)`` while nothing is
    due, ``(None, entry)`` for each due entry (which the caller runs), and
    ``(None, None)`` while the timer is empty.
    """

    Entry = Entry

    #: Called with the exception when :meth:`apply_entry` fails; ``None`` logs it.
    on_error: Callable[[BaseException], Any] | None = None

    def __init__(self, max_interval: float | None = None,
                 on_error: Callable[[BaseException], Any] | None = None, **kwargs: Any) -> None:
        self.max_interval = float(max_interval or DEFAULT_MAX_INTERVAL)
        self.on_error = on_error or self.on_error
        self._queue: list[Any] = []

    def __enter__(self) -> Timer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        self.stop()

    # -- scheduling --------------------------------------------------------
    def call_at(self, eta: Any, fun: Callable[..., Any], args: Any = (), kwargs: Any = None,
                priority: int = 0) -> Any:
        """Call ``fun(*args, **kwargs)`` at ``eta`` (a monotonic time or a datetime)."""
        return self.enter_at(self.Entry(fun, args, kwargs or {}), eta, priority)

    def call_after(self, secs: float, fun: Callable[..., Any], args: Any = (), kwargs: Any = None,
                   priority: int = 0) -> Any:
        """Call ``fun(*args, **kwargs)`` in ``secs`` seconds."""
        return self.enter_after(secs, self.Entry(fun, args, kwargs or {}), priority)

    def call_repeatedly(self, secs: float, fun: Callable[..., Any], args: Any = (),
                        kwargs: Any = None, priority: int = 0) -> Any:
        """Call ``fun`` every ``secs`` seconds, first in ``secs`` seconds, until cancelled.

        The returned entry stays the same across runs: cancel it to stop.  A
        run that raises is still followed by the next one.
        """
        entry = self.Entry(fun, args, kwargs or {})

        @wraps(fun)
        def _repeat(*a: Any, **kw: Any) -> Any:
            now = monotonic()
            last = entry._last_run
            try:
                if last is None or now - last >= secs:
                    entry._last_run = now
                    return fun(*a, **kw)
                return None
            finally:
                if not entry.canceled:
                    last = entry._last_run
                    self.enter_after(secs - (now - last) if last is not None else secs,
                                     entry, priority)

        entry.fun = _repeat
        return self.enter_after(secs, entry, priority)

    def enter_at(self, entry: _Entry, eta: Any = None, priority: int = 0,
                 time: Callable[[], float] = monotonic) -> Any:
        """Schedule ``entry`` at ``eta`` (monotonic seconds or a datetime; ``None``: now)."""
        if eta is None:
            eta = time()
        if isinstance(eta, datetime):
            try:
                eta = to_timestamp(eta)
            except Exception as exc:
                if not self.handle_error(exc):
                    raise
                return None
        return self._enter(eta, priority, entry)

    def enter_after(self, secs: float, entry: _Entry, priority: int = 0,
                    time: Callable[[], float] = monotonic) -> Any:
        """Schedule ``entry`` in ``secs`` seconds."""
        return self.enter_at(entry, time() + float(secs), priority)

    def _enter(self, eta: float, priority: int, entry: _Entry) -> Any:
        heapq.heappush(self._queue, scheduled(eta, priority, entry))
        return entry

    # -- running -------------------------------------------------------------
    def apply_entry(self, entry: _Entry) -> None:
        """Run ``entry``; an exception goes to :attr:`on_error`, or to the log."""
        try:
            entry()
        except Exception as exc:
            if not self.handle_error(exc):
                logger.error("Error in timer: %r", exc, exc_info=True)

    def handle_error(self, exc_info: BaseException) -> bool:
        """Pass ``exc_info`` to :attr:`on_error`; ``False`` when there is none."""
        if self.on_error:
            self.on_error(exc_info)
            return True
        return False

    def stop(self) -> None:
        """Nothing to stop: this timer runs in its caller's thread."""

    def __iter__(self) -> Iterator[tuple[float | None, _Entry | None]]:
        queue = self._queue
        max_interval = self.max_interval
        pop, push = heapq.heappop, heapq.heappush
        while True:
            if not queue:
                yield None, None
                continue
            first = queue[0]
            eta = first[0]
            now = monotonic()
            if now < eta:
                yield min(eta - now, max_interval), None
                continue
            item = pop(queue)
            if item is not first:
                # Another thread changed the heap in between: look again.
                push(queue, item)
                continue
            entry = item[2]
            if not entry.canceled:
                yield None, entry

    # -- inspection ----------------------------------------------------------
    def clear(self) -> None:
        """Drop every entry (the list object is kept: iterators hold it)."""
        self._queue[:] = []

    def cancel(self, tref: _Entry) -> None:
        """Cancel the entry ``tref``."""
        tref.cancel()

    def __len__(self) -> int:
        return len(self._queue)

    def __nonzero__(self) -> bool:
        return True

    @property
    def queue(self) -> list[Any]:
        """The ``scheduled`` items, soonest first (a sorted copy)."""
        return sorted(self._queue)

    @property
    def schedule(self) -> Timer:
        """This timer (a thread timer wraps one and exposes it here)."""
        return self
