"""Callback-based semaphores for code that runs in one thread (the event loop)."""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import Any, Callable

__all__ = ("DummyLock", "LaxBoundedSemaphore")


class LaxBoundedSemaphore:
    """A semaphore that calls back instead of blocking.

    ``acquire(callback, *args, **kwargs)`` calls the callback at once when a
    slot is free, or queues it (first in, first out) until :meth:`release`
    frees one.  "Lax": releasing more often than acquiring never raises the
    value above :attr:`initial_value`.
    """

    def __init__(self, value: int) -> None:
        #: The size of the semaphore.
        self.initial_value = value
        #: Free slots.
        self.value = value
        self._waiting: deque[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = deque()
        self._add_waiter = self._waiting.append
        self._pop_waiter = self._waiting.popleft

    def acquire(self, callback: Callable[..., Any], *partial_args: Any, **partial_kwargs: Any) -> bool:
        """Take a slot and call ``callback``; ``False`` when it had to wait for one."""
        if self.value <= 0:
            self._add_waiter((callback, partial_args, partial_kwargs))
            return False
        self.value = max(self.value - 1, 0)
        callback(*partial_args, **partial_kwargs)
        return True

    def release(self) -> None:
        """Give a slot back: to the oldest waiting callback (called now), else to the pool."""
        try:
            waiter, args, kwargs = self._pop_waiter()
        except IndexError:
            self.value = min(self.value + 1, self.initial_value)
        else:
            waiter(*args, **kwargs)

    def grow(self, n: int = 1) -> None:
        """Add ``n`` slots; up to ``n`` waiting callbacks run now."""
        self.initial_value += n
        self.value += n
        for _ in range(n):
            self.release()

    def shrink(self, n: int = 1) -> None:
        """Remove ``n`` slots (neither the size nor the free count goes below zero)."""
        self.initial_value = max(self.initial_value - n, 0)
        self.value = max(self.value - n, 0)

    def clear(self) -> None:
        """Forget every waiting callback and free every slot."""
        self._waiting.clear()
        self.value = self.initial_value

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} at {id(self):#x} "
                f"value:{self.value} waiting:{len(self._waiting)}>")


class DummyLock:
    """A context manager that does nothing: a lock for code with nothing to lock."""

    def __enter__(self) -> DummyLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        return None
