"""Fair scheduling between resources (queues, channels)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from kombu.utils.imports import symbol_by_name

__all__ = (
    "FairCycle",
    "cycle_by_name",
    "priority_cycle",
    "round_robin_cycle",
    "sorted_cycle",
)

T = TypeVar("T")

CYCLE_ALIASES = {
    "priority": "kombu.utils.scheduling:priority_cycle",
    "round_robin": "kombu.utils.scheduling:round_robin_cycle",
    "sorted": "kombu.utils.scheduling:sorted_cycle",
}


class FairCycle:
    """Take from a list of resources in turn, so that each gets a fair share.

    :meth:`get` calls ``fun(resource, callback, **kwargs)`` on the resource
    after the one used last, moving on while ``fun`` raises ``predicate``
    (the resource's "empty" exception).  When every resource raised it, the
    last such exception propagates; with no resources at all a new
    ``predicate()`` is raised.

    ``resources`` is used live: resources added to or removed from the list
    take part from the next call on.
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        resources: Sequence[Any],
        predicate: type[BaseException] = Exception,
    ) -> None:
        self.fun = fun
        self.resources = resources
        self.predicate = predicate
        self.pos = 0

    def get(self, callback: Callable[..., Any], **kwargs: Any) -> Any:
        """Return ``fun``'s result for the next resource that is not empty."""
        resources = self.resources
        fun = self.fun
        predicate = self.predicate
        tries = len(resources)
        while tries > 0:
            tries -= 1
            pos = self.pos
            if pos >= len(resources):
                pos = 0
                if not resources:
                    break
            self.pos = pos + 1
            try:
                return fun(resources[pos], callback, **kwargs)
            except predicate:
                if tries <= 0:
                    raise
        raise predicate()

    def close(self) -> None:
        """Release resources held by the cycle (nothing, for this class)."""

    def __repr__(self) -> str:
        return f"<FairCycle: {self.pos}/{len(self.resources)} {self.resources}>"


class round_robin_cycle(Generic[T]):
    """Items in round-robin order: the item used last moves to the end."""

    def __init__(self, it: list[T] | None = None) -> None:
        self.items: list[T] = it if it is not None else []

    def update(self, it: Iterable[T]) -> None:
        """Replace the items, keeping the list object."""
        self.items[:] = it

    def consume(self, n: int) -> list[T]:
        """Return the first ``n`` items, in the order to use them."""
        return self.items[:n]

    def rotate(self, last_used: T) -> T:
        """Move ``last_used`` to the end of the list; return it."""
        items = self.items
        try:
            items.append(items.pop(items.index(last_used)))
        except ValueError:
            pass
        return last_used


class priority_cycle(round_robin_cycle[T]):
    """Items always in the order given (the first has the highest priority)."""

    def rotate(self, last_used: T) -> T:
        """Keep the order; return ``last_used``."""
        return last_used


class sorted_cycle(priority_cycle[T]):
    """Items in sorted order."""

    def consume(self, n: int) -> list[T]:
        """Return the first ``n`` items, sorted."""
        return sorted(self.items[:n])  # type: ignore[type-var]


def cycle_by_name(name: str | type) -> Any:
    """Return the cycle class named ``name`` (``'round_robin'``, ``'priority'``,
    ``'sorted'``, or an import path)."""
    return symbol_by_name(name, CYCLE_ALIASES)
