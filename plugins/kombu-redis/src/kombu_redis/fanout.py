"""Fanout exchanges: which queues are bound to them, and which a channel consumes.

A fanout exchange publishes with PUB/SUB (see :mod:`kombu_redis.keys` for
the channel names); a consuming channel's waiter PSUBSCRIBEs to the
patterns of its fanout queues, and every message received goes to each of
the channel's queues bound to that exchange.
"""

from __future__ import annotations

from kombu_redis.keys import KeySchema

__all__ = ("Fanout",)


class Fanout:
    """The fanout queues of one channel.

    ``bound`` maps a queue to the ``(exchange, routing_key)`` it is bound
    with; it may be shared by every channel of the process (as in kombu),
    so any channel can consume a queue another declared.
    """

    def __init__(self, keys: KeySchema, bound: dict[str, tuple[str, str]]) -> None:
        self.keys = keys
        self.bound = bound
        #: The fanout queues this channel consumes.
        self.active: set[str] = set()
        #: Exchange -> the queues of this channel consuming from it, in order.
        self._by_exchange: dict[str, list[str]] = {}

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        """Record ``queue``'s binding (``#`` in the key becomes the glob ``*``)."""
        self.bound[queue] = (exchange, routing_key.replace("#", "*"))

    def consume(self, queue: str) -> None:
        """Start consuming ``queue`` if it is bound to a fanout exchange."""
        if queue in self.bound:
            exchange, _ = self.bound[queue]
            self.active.add(queue)
            queues = self._by_exchange.setdefault(exchange, [])
            if queue not in queues:
                queues.append(queue)

    def cancel(self, queue: str) -> None:
        """Stop consuming ``queue``."""
        if queue not in self.active:
            return
        self.active.discard(queue)
        exchange, _ = self.bound.get(queue, ("", ""))
        queues = self._by_exchange.get(exchange, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            self._by_exchange.pop(exchange, None)

    def patterns(self) -> set[str]:
        """The PSUBSCRIBE patterns of the queues consumed."""
        return {p for q in self.active for p in self.keys.subscribe_patterns(*self.bound[q])}

    def queues_for(self, pubsub_channel: bytes | str) -> list[str]:
        """The consumed queues a message received on ``pubsub_channel`` goes to."""
        return self._by_exchange.get(self.keys.fanout_exchange(pubsub_channel), [])
