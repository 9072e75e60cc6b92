"""Fetching: the pop script, the local buffer, checks, and tracking wake-ups.

A fetch runs the pop script (:data:`kombu_redis.scripts.POP`), which pops up
to the prefetch window from the consumed queues *and* records them as
unacknowledged in one step (and first applies pending acks).  Fetched
messages wait in :attr:`Fetcher.buffer` until delivered.  A message that is
not a kombu envelope is moved to ``queue + sep + 'rejected'``.  Before
waiting, the fetcher has Redis send tracking invalidations for the consumed
queues to the channel's waiter (:meth:`Fetcher.arm`), so the wait ends
when one of them changes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Container
from itertools import chain
from time import time
from typing import Any

from redis import exceptions as rexc

from kombu_redis.envelope import parse
from kombu_redis.keys import KeySchema, tracking_prefixes
from kombu_redis.link import Link
from kombu_redis.scripts import POP
from kombu_redis.waiter import Waiter

__all__ = ("FALLBACK_POLL_INTERVAL", "Fetched", "Fetcher")

logger = logging.getLogger("kombu.transport.redis")

#: Seconds between polls when the server refuses client-side tracking.
FALLBACK_POLL_INTERVAL = 0.05

#: A fetched message: (queue, raw, the field it is recorded under, or False).
Fetched = tuple[str, Any, Any]


class Fetcher:
    """What one channel fetches from, and what it fetched.

    ``expires`` maps queues with x-expires to their TTL (ms): a fetch from
    one of them pushes its expiry.  ``codecs`` are the body encodings the
    channel can decode.
    """

    def __init__(self, link: Link, keys: KeySchema, waiter: Waiter, expires: dict[str, int],
                 codecs: Container[str], round_robin: bool = True) -> None:
        self.link = link
        self.keys = keys
        self.waiter = waiter
        self.expires = expires
        self.codecs = codecs
        self.round_robin = round_robin
        #: Fetched, undelivered messages.
        self.buffer: deque[Fetched] = deque()
        #: The tag of the message being delivered: off the buffer and maybe
        #: not yet in the QoS (the refresher counts it as held).
        self.delivering: Any = False
        #: Whether the server accepted client-side tracking (else: poll).
        self.tracking = True
        self.queues: list[str] = []
        self.flags = ""
        self._qkeys: dict[str, list[str]] = {}
        self._prefixes: tuple[str, ...] = ()
        self._armed: tuple[Any, Any, tuple[str, ...]] | None = None
        self._rr = 0
        #: Messages the last pop script took (delivered or quarantined).
        self.last_count = 0

    def set_queues(self, queues: list[str], record: list[bool]) -> None:
        """Consume ``queues`` in this order; ``record[i]``: record queue i's messages."""
        self.queues = queues
        self._qkeys = {q: self.keys.queue_keys(q) for q in queues}
        self._prefixes = tracking_prefixes(self.keys.prefix + q for q in queues)
        self.flags = "".join("1" if r else "0" for r in record)

    # -- fetching ------------------------------------------------------------
    def fetch(self, limit: int, acks: list[Any]) -> bool:
        """Pop up to ``limit`` messages into the buffer (applying ``acks`` first);
        True if the queues fetched from record their messages."""
        if self.tracking and not self.is_armed():
            self.arm()
        queues, flags = self.queues, self.flags
        rr = self.round_robin and len(queues) > 1
        if rr:
            start = self._rr = (self._rr + 1) % len(queues)
            queues = queues[start:] + queues[:start]
            flags = flags[start:] + flags[:start]
        got = self.pop(queues, limit, flags, rr, acks)
        if got:
            self.buffer.extend(got)
            return "1" in flags
        return False

    def pop(self, queues: list[str], limit: int, flags: str, rr: bool,
            acks: list[Any] | None = None) -> list[Fetched]:
        """Run the pop script: up to ``limit`` messages of ``queues``."""
        keys: list[Any] = [self.keys.unacked, self.keys.index]
        cached = self._qkeys
        per_queue = [cached.get(q) or self.keys.queue_keys(q) for q in queues]
        for level in range(len(self.keys.priority_steps)):
            keys.extend(k[level] for k in per_queue)
        suffix = self.keys.rejected_suffix
        out = self.link.script(POP, keys, [repr(time()), limit, len(queues), flags,
                                           "1" if rr else "0", suffix, *queues, *(acks or ())])
        got: list[Fetched] = []
        self.last_count = len(out) // 3
        for i in range(0, len(out), 3):
            index, raw, tag = out[i], out[i + 1], out[i + 2]
            if index < 0:
                logger.error("Moved a message that is not a kombu envelope from queue %r to %r: "
                             "%.200r", queues[-index - 1], queues[-index - 1] + suffix, raw)
                continue
            got.append((queues[index - 1], raw, tag.decode() if tag else False))
        expires = self.expires
        if expires:
            touched = {q for q, _, _ in got if q in expires}
            if touched:
                self.link.pipe(*(("PEXPIRE", k, expires[q])
                                 for q in touched for k in self.keys.queue_keys(q)))
        return got

    def decode(self, queue: str, raw: Any, tag: Any) -> dict[str, Any] | None:
        """The envelope of a fetched message, or None (then it was quarantined)."""
        try:
            return parse(raw, tag, self.codecs)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self.quarantine(queue, raw, tag, exc)
            return None

    def quarantine(self, queue: str, raw: Any, tag: Any, reason: BaseException) -> None:
        """Move an unusable message to ``queue + sep + 'rejected'`` and drop its record."""
        keys = self.keys
        logger.error("Moved an unusable message from queue %r to %r (%s): %.200r",
                     queue, queue + keys.rejected_suffix, reason, raw)
        commands: list[tuple[Any, ...]] = [("LPUSH", keys.rejected_key(queue), raw)]
        if tag:
            commands += [("HDEL", keys.unacked, tag), ("ZREM", keys.index, tag)]
        self.link.pipe(*commands)

    # -- the buffer ----------------------------------------------------------
    def take(self, queue: str | None = None) -> list[Fetched]:
        """Remove and return the buffered messages (of ``queue``, or all), oldest first."""
        buffer = self.buffer
        keep: list[Fetched] = []
        back: list[Fetched] = []
        for item in buffer:
            (back if queue is None or item[0] == queue else keep).append(item)
        if back:
            buffer.clear()
            buffer.extend(keep)
        return back

    def held(self) -> list[Any]:
        """Record fields of the buffered messages and of the one being delivered.

        Safe from another thread: the buffer is copied in one C-level step,
        then the tag being delivered read, in the order a message moves.
        """
        held: list[Any] = [tag for _, _, tag in list(self.buffer) if tag]
        delivering = self.delivering
        if delivering:
            held.append(delivering)
        return held

    # -- wake-ups ------------------------------------------------------------
    def is_armed(self) -> bool:
        """Whether Redis tracks the current queues for the current waiter."""
        armed, waiter = self._armed, self.waiter
        return (armed is not None and armed[0] is self.link.sock and armed[0] is not None
                and waiter.connected and armed[1] is waiter.sock
                and armed[2] == self._prefixes)

    def arm(self) -> None:
        """Have Redis wake the waiter when a consumed queue changes.

        A server that refuses tracking turns it off for good (the channel
        polls every FALLBACK_POLL_INTERVAL seconds), with a warning.
        """
        waiter = self.waiter
        prefixes = self._prefixes
        try:
            waiter.subscribe_invalidations()
            self.link.call("CLIENT", "TRACKING", "OFF")
            self.link.call("CLIENT", "TRACKING", "ON", "REDIRECT", waiter.client_id, "BCAST",
                           *chain.from_iterable(("PREFIX", p) for p in prefixes), "NOLOOP")
        except rexc.ResponseError as exc:
            self.tracking = False
            logger.warning("Redis refused client-side tracking (%s); consumers poll every "
                           "%.2fs instead of blocking.", exc, FALLBACK_POLL_INTERVAL)
            return
        self._armed = (self.link.sock, waiter.sock, prefixes)

    def disarm(self) -> None:
        self._armed = None
