"""Logical clocks: :class:`LamportClock` and the event ordering tuple :class:`timetuple`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

__all__ = ("LamportClock", "timetuple")


class timetuple(NamedTuple):
    """An event's ``(clock, timestamp, id, obj)``, ordered for a heap of events.

    Two events that both carry a (non-zero) logical clock are ordered by
    clock, and by ``id`` (``'hostname:pid'``) when the clocks are equal;
    otherwise by ``timestamp``.  ``==`` compares the four fields.
    """

    #: Lamport clock value of the event (``None`` or 0 when unknown).
    clock: int | None
    #: UNIX time of the event.
    timestamp: float
    #: Who produced the event, usually ``'hostname:pid'``.
    id: str
    #: Anything to carry along with the event.
    obj: Any = None

    def __repr__(self) -> str:
        return (f"_lamport(clock={self.clock}, timestamp={self.timestamp}, "
                f"id={self.id} {self.obj!r})")

    def _before(self, other: Sequence[Any]) -> bool:
        mine, theirs = self[0], other[0]
        if mine and theirs:
            if mine == theirs:
                return bool(self[2] < other[2])
            return bool(mine < theirs)
        return bool(self[1] < other[1])

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, tuple) or len(other) < 3:
            return NotImplemented
        return self._before(other)

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, tuple) or len(other) < 3:
            return NotImplemented
        return timetuple._before(other, self)  # type: ignore[arg-type]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, tuple) or len(other) < 3:
            return NotImplemented
        return not timetuple._before(other, self)  # type: ignore[arg-type]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, tuple) or len(other) < 3:
            return NotImplemented
        return not self._before(other)


class LamportClock:
    """A Lamport logical clock, safe to share between threads.

    Call :meth:`forward` before sending a message (and put the value in
    it) and :meth:`adjust` with the value of every message received.
    """

    #: The clock's current value.
    value: int = 0

    def __init__(self, initial_value: int = 0,
                 Lock: Callable[[], Any] = threading.Lock) -> None:
        self.value = initial_value
        self.mutex = Lock()

    def adjust(self, other: int) -> int:
        """Move past a received clock value: ``max(value, other) + 1``; return it."""
        with self.mutex:
            value = self.value = max(self.value, other) + 1
            return value

    def forward(self) -> int:
        """Advance the clock by one and return the new value."""
        with self.mutex:
            self.value += 1
            return self.value

    def sort_heap(self, h: Sequence[Sequence[Any]]) -> Any:
        """Return the earliest event of a sorted list of ``(clock, id, ...)`` events.

        Among the events that share the lowest clock value the one with the
        lowest id wins.
        """
        if not h:
            raise ValueError("sort_heap() needs at least one event")
        first = h[0][0]
        tied = [event for event in h if event[0] == first]
        return min(tied, key=lambda event: event[1]) if len(tied) > 1 else h[0]

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return f"<LamportClock: {self.value}>"
