"""Binding tables in Redis, and kombu 5.7's expiry of those of x-expires queues.

A binding is a member of the SET ``_kombu.binding.<exchange>`` (see
:mod:`kombu_redis.keys`).  A queue without x-expires also has its member in
``_kombu.binding_permanent.<exchange>``; a queue with x-expires adds its
member through kombu's refresh script, which pushes the exchange's deadline
in ``_kombu.binding_deadlines``, refreshed while the queue is consumed, and
swept when overdue (a table with permanent members is kept).
"""

from __future__ import annotations

from time import monotonic
from typing import Any, Callable

from kombu_redis.keys import KeySchema
from kombu_redis.link import Link
from kombu_redis.scripts import REFRESH_BINDING, SWEEP_BINDINGS

__all__ = ("BINDING_EXPIRES_FACTOR", "BINDING_SWEEP_INTERVAL", "MIN_BINDING_TTL", "Bindings",
           "binding_ttl")

#: kombu 5.7's binding expiry: a binding table of queues with x-expires is
#: swept once nobody refreshed it for this many times the queue's x-expires,
#: and never under MIN_BINDING_TTL (ms); channels sweep every
#: BINDING_SWEEP_INTERVAL seconds.
BINDING_EXPIRES_FACTOR = 2
MIN_BINDING_TTL = 60 * 60 * 1000
BINDING_SWEEP_INTERVAL = 60


def binding_ttl(expires_ms: int) -> int:
    """Milliseconds an x-expires queue's binding table outlives its last refresh."""
    return max(expires_ms * BINDING_EXPIRES_FACTOR, MIN_BINDING_TTL)


class Bindings:
    """The binding tables one channel reads and writes, over its link."""

    def __init__(self, link: Link, keys: KeySchema) -> None:
        self.link = link
        self.keys = keys
        self.refreshed_at = float("-inf")
        self.swept_at = float("-inf")

    def add(self, exchange: str, member: str, ttl: int | None = None) -> None:
        """Add ``member``; with ``ttl`` (ms, an x-expires queue) through the refresh script."""
        keys = self.keys
        if ttl is not None:
            self.link.script(REFRESH_BINDING, [keys.binding_key(exchange), keys.binding_deadlines],
                             [member, exchange, ttl])
        else:
            self.link.pipe(("SADD", keys.binding_key(exchange), member),
                           ("SADD", keys.permanent_key(exchange), member))

    def remove_commands(self, exchange: str, members: list[str]) -> list[tuple[Any, ...]]:
        """The commands that remove ``members`` from ``exchange``'s tables."""
        keys = self.keys
        return [("SREM", keys.binding_key(exchange), *members),
                ("SREM", keys.permanent_key(exchange), *members)]

    def remove(self, exchange: str, members: list[str]) -> None:
        if members:
            self.link.pipe(*self.remove_commands(exchange, members))

    def members_of(self, exchange: str, routing_key: str, queue: str) -> list[str]:
        """The members binding ``queue`` to ``exchange`` with ``routing_key``,
        whatever their pattern (an exchange declared elsewhere)."""
        found = []
        for raw in self.link.call("SMEMBERS", self.keys.binding_key(exchange)) or ():
            member = bytes(raw).decode()
            if member.split(self.keys.sep)[::2] == [routing_key or "", queue]:
                found.append(member)
        return found

    def table(self, exchange: str) -> list[tuple[str, ...]]:
        """``(routing_key, pattern, queue)`` of every binding of ``exchange``."""
        sep = self.keys.sep
        return [tuple(bytes(m).decode().split(sep))
                for m in self.link.call("SMEMBERS", self.keys.binding_key(exchange)) or ()]

    def sweep(self, limit: int = 100) -> int:
        """Delete binding tables nobody refreshed in time; how many deadlines went."""
        return int(self.link.script(SWEEP_BINDINGS, [self.keys.binding_deadlines],
                                    [*self.keys.binding_key_prefixes(), limit]))

    def maybe_refresh(self, min_ttl: int,
                      entries: Callable[[], list[tuple[str, str, int]]]) -> None:
        """Refresh the tables of consumed x-expires queues every third of
        ``min_ttl`` (ms), then sweep at most every BINDING_SWEEP_INTERVAL s.

        ``entries()`` lists ``(exchange, member, ttl)`` to refresh.
        """
        now = monotonic()
        if now - self.refreshed_at >= min_ttl / 3000:
            deadlines = self.keys.binding_deadlines
            calls = [([self.keys.binding_key(exchange), deadlines], [member, exchange, ttl])
                     for exchange, member, ttl in entries()]
            if calls:
                self.link.pipe_scripts(REFRESH_BINDING, calls)
            self.refreshed_at = now
        if now - self.swept_at >= BINDING_SWEEP_INTERVAL:
            self.sweep()
            self.swept_at = now
