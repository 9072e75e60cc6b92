"""The ack pipeline: acknowledgements of recorded messages, to Redis.

An ack removes a message's record (``ZREM`` from the index, ``HDEL`` from
the ``unacked`` hash; both idempotent).  Acks given in a message callback
on the consuming thread are collected (:meth:`AckPipeline.ack`) and written
when the callback returns without waiting for the reply
(:meth:`AckPipeline.send`); the reply is read before the next command on
the channel's connection (see :mod:`kombu_redis.link`), and acks whose
reply never came are pending again.  The next fetch carries up to
ACK_CHUNK pending acks inside the pop script.  Close and cancel settle them
(:meth:`AckPipeline.settle`): confirm, or resend on a fresh connection,
within a bounded time.  Acks from other threads go through the shared pool
at once and wait for the reply.
"""

from __future__ import annotations

import logging
from threading import get_ident
from time import monotonic, sleep
from typing import Any, Callable

from redis import exceptions as rexc

from kombu_redis.keys import KeySchema
from kombu_redis.link import NET_ERRORS, Link

__all__ = ("ACK_CHUNK", "ACK_SETTLE_TIMEOUT", "POOL_WAIT_TIMEOUT", "AckPipeline", "ack_commands",
           "on_pool")

logger = logging.getLogger("kombu.transport.redis")

#: Tags sent per command.
ACK_CHUNK = 1000
#: Seconds a close or cancel spends at most confirming the acks written on
#: the channel's connection (or sending them again on a fresh one); at most
#: half the visibility timeout.
ACK_SETTLE_TIMEOUT = 5.0
#: Seconds an ack from another thread waits for a connection of the shared
#: pool when all ``max_connections`` are in use (``socket_timeout`` if set).
POOL_WAIT_TIMEOUT = 10.0
#: redis-py's error for a pool whose connections are all in use.
_POOL_EXHAUSTED: Any = getattr(rexc, "MaxConnectionsError", ())


def ack_commands(keys: KeySchema, tags: list[Any]) -> list[tuple[Any, ...]]:
    """The commands that remove the records of ``tags``, ACK_CHUNK tags each."""
    commands: list[tuple[Any, ...]] = []
    for i in range(0, len(tags), ACK_CHUNK):
        chunk = tags[i:i + ACK_CHUNK]
        commands += [("ZREM", keys.index, *chunk), ("HDEL", keys.unacked, *chunk)]
    return commands


def on_pool(fn: Callable[..., Any], *args: Any, wait: float = POOL_WAIT_TIMEOUT) -> Any:
    """``fn(*args)`` on the shared pool, waiting up to ``wait`` seconds for a free
    connection when all ``max_connections`` are in use (then re-raising)."""
    deadline = None
    delay = 0.001
    while True:
        try:
            return fn(*args)
        except _POOL_EXHAUSTED:
            now = monotonic()
            if deadline is None:
                deadline = now + wait
            elif now >= deadline:
                raise
            sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.05)


class AckPipeline:
    """The acks of one channel: pending, written, confirmed, settled.

    ``link`` is the channel's connection; ``pool_client()`` returns the
    thread-safe client of the shared pool (for acks from other threads);
    ``enabled`` is the ``ack_emulation`` option (without it an ack has no
    record to remove).
    """

    def __init__(self, link: Link, keys: KeySchema, pool_client: Callable[[], Any],
                 enabled: bool = True, visibility_timeout: float = 3600,
                 pool_wait: float = POOL_WAIT_TIMEOUT) -> None:
        self.link = link
        self.keys = keys
        self.pool_client = pool_client
        self.enabled = enabled
        self.visibility_timeout = visibility_timeout
        self.pool_wait = pool_wait
        #: Acks given by callbacks, not yet written.
        self.pending: list[Any] = []
        #: The thread running a message callback of this channel, if any:
        #: its acks are collected and written when the callback returns.
        self.callback_thread: int | None = None
        #: The thread running the event loop this channel is registered
        #: with, if any: its acks are collected and written on the loop's
        #: next turn (see :mod:`kombu_redis.eventloop`).
        self.loop_thread: int | None = None
        link.on_lost = self.pending_again

    def pending_again(self, tags: list[Any]) -> None:
        """``tags`` were not confirmed: send them again (acks are idempotent)."""
        self.pending[:0] = tags

    def ack(self, tag: Any) -> None:
        """Acknowledge ``tag``: collected in a callback, else removed at once."""
        ident = get_ident()
        if ident == self.callback_thread or ident == self.loop_thread:
            self.pending.append(tag)
        elif self.enabled:
            self.remove(tags=[tag])

    def take(self) -> list[Any]:
        """The pending acks a fetch carries in its pop script (at most ACK_CHUNK;
        more are flushed first)."""
        acks = self.pending
        if acks:
            self.pending = []
        if len(acks) > ACK_CHUNK:
            try:
                self.remove(acks, own=True)
            except BaseException:
                self.pending[:0] = acks
                raise
            return []
        return acks

    def send(self) -> None:
        """Write the pending acks now, without waiting for the reply."""
        acks = self.pending
        if not acks or not self.enabled:
            self.pending = []
            return
        commands = ack_commands(self.keys, acks)
        with self.link.lock:
            self.pending = []
            try:
                self.link.send_nowait(commands, acks)
            except NET_ERRORS as exc:
                self.pending[:0] = acks
                logger.debug("Could not send acks now (%r); sent with the next command", exc)

    def flush(self) -> None:
        """Send the pending acks and wait until Redis confirmed them."""
        acks = self.pending
        if acks:
            self.pending = []
            try:
                self.remove(acks, own=True)
            except BaseException:
                self.pending[:0] = acks
                raise

    def remove(self, tags: list[Any], own: bool = False) -> None:
        """Remove the records of ``tags`` and wait for the reply: on the
        channel's connection if ``own``, else through the shared pool."""
        for i in range(0, len(tags), ACK_CHUNK):
            chunk = tags[i:i + ACK_CHUNK]
            if own:
                self.link.pipe(("ZREM", self.keys.index, *chunk),
                               ("HDEL", self.keys.unacked, *chunk))
            else:
                on_pool(self._remove_pooled, chunk, wait=self.pool_wait)

    def _remove_pooled(self, tags: list[Any]) -> None:
        with self.pool_client().pipeline(transaction=False) as pipe:
            pipe.zrem(self.keys.index, *tags)
            pipe.hdel(self.keys.unacked, *tags)
            pipe.execute()

    def settle(self, timeout: float | None = None) -> None:
        """Make sure Redis applied every ack given (close, cancel).

        Sends the pending acks and reads the replies owed for acks written
        without waiting; if the connection fails, or the replies do not come
        within ``timeout``, the acks are sent again on a fresh connection,
        retried until ``timeout`` passes.  What still could not be sent is
        logged and dropped: those messages are redelivered after
        visibility_timeout.  ``timeout`` defaults to ACK_SETTLE_TIMEOUT, at
        most half the visibility timeout (a later ack could hit the record
        of a redelivery).
        """
        if timeout is None:
            timeout = min(ACK_SETTLE_TIMEOUT, self.visibility_timeout / 2)
        if not self.enabled:
            self.pending = []
            return
        link = self.link
        if not link.owed and not self.pending:
            return
        deadline = monotonic() + timeout
        with link.lock:
            if link.confirm(deadline) and self.pending and link.connected:
                self.send()
                link.confirm(deadline)
            acks, self.pending = self.pending, []
        if acks:
            self.resend(acks, deadline)

    def resend(self, acks: list[Any], deadline: float) -> None:
        """Send ``acks`` on fresh connections, retried until ``deadline``."""
        commands = ack_commands(self.keys, acks)
        error: BaseException | None = None
        delay = 0.02
        while (left := deadline - monotonic()) > 0:
            # Bounded by what is left of the timeout (the channel's own
            # connection may be dead, or have no socket timeout at all).
            try:
                self.link.send_fresh(commands, left)
                return
            except (*NET_ERRORS, rexc.InvalidResponse) as exc:
                error = exc
            sleep(max(min(delay, deadline - monotonic()), 0))
            delay = min(delay * 2, 0.5)
        logger.warning("Could not confirm %d ack(s) in time (%r); those messages are "
                       "redelivered after visibility_timeout", len(acks), error)
