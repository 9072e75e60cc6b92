"""Rate limiting."""

from __future__ import annotations

from collections import deque
from time import monotonic
from typing import Any

__all__ = ("TokenBucket",)


class TokenBucket:
    """A token bucket: ``capacity`` tokens, refilled at ``fill_rate`` per second.

    The bucket starts full.  It also holds a FIFO of pending items
    (:meth:`add`, :meth:`pop`) for callers that queue work until tokens are
    available.  Not thread-safe: guard shared buckets with a lock.
    """

    #: Tokens added per second.
    fill_rate: float
    #: Most tokens the bucket holds.
    capacity: float = 1
    #: When the token count was last brought up to date.
    timestamp: float

    def __init__(self, fill_rate: float, capacity: float = 1) -> None:
        self.capacity = float(capacity)
        self._tokens = self.capacity
        self.fill_rate = float(fill_rate)
        self.timestamp = monotonic()
        self.contents: deque[Any] = deque()

    def add(self, item: Any) -> None:
        """Queue ``item`` until tokens are available."""
        self.contents.append(item)

    def pop(self) -> Any:
        """Return the oldest queued item (:exc:`IndexError` when none)."""
        return self.contents.popleft()

    def clear_pending(self) -> None:
        """Drop every queued item."""
        self.contents.clear()

    def can_consume(self, tokens: float = 1) -> bool:
        """Take ``tokens`` tokens and return ``True`` if the bucket has that many.

        Otherwise take none and return ``False``.
        """
        if tokens <= self._get_tokens():
            self._tokens -= tokens
            return True
        return False

    def expected_time(self, tokens: float = 1) -> float:
        """Seconds until ``tokens`` tokens will be available (0 if they are now)."""
        available = self._get_tokens()
        if tokens <= available:
            return 0.0
        if self.fill_rate <= 0:
            return float("inf")
        return (tokens - available) / self.fill_rate

    def _get_tokens(self) -> float:
        # The clock advances even while the bucket is full: kombu only moves
        # it when the bucket is short, so the first take after an idle spell
        # was refilled at once from the idle time.
        now = monotonic()
        if self._tokens < self.capacity:
            self._tokens = min(self.capacity, self._tokens + self.fill_rate * (now - self.timestamp))
        self.timestamp = now
        return self._tokens
