"""The connection a consuming channel blocks on.

Redis has no command that blocks on several lists without popping from them,
and popping outside the script that records the message is what loses
messages.  So a channel blocks on a PUB/SUB connection instead: Redis
client-side tracking in broadcast mode (``CLIENT TRACKING ON REDIRECT <id>
BCAST PREFIX <queue> ...``, set up by the channel) sends it an invalidation
whenever a consumed queue changes, which wakes the channel up to run the pop
script.  The same connection carries the fanout subscriptions.
"""

from __future__ import annotations

from time import monotonic
from typing import Any, Callable

from redis import exceptions as rexc

from kombu_redis.link import NET_ERRORS

__all__ = ("INVALIDATE", "NET_ERRORS", "Waiter")

#: The channel Redis sends tracking invalidations to.
INVALIDATE = "__redis__:invalidate"
#: The shortest time a (P)SUBSCRIBE waits for Redis to confirm it.
MIN_REPLY_TIMEOUT = 10.0


class Waiter:
    """A channel's PUB/SUB connection: tracking wake-ups and fanout messages.

    ``factory(**overrides)`` makes the (unconnected) redis-py connection;
    every message received (a fanout message, a tracking invalidation) is
    handed to ``on_reply``; a (P)SUBSCRIBE waits for its confirmation up to
    ``reply_timeout`` seconds (at least MIN_REPLY_TIMEOUT).
    """

    def __init__(self, factory: Callable[..., Any], on_reply: Callable[[Any], None],
                 reply_timeout: float | None = None) -> None:
        self.factory = factory
        self.on_reply = on_reply
        self.reply_timeout = max(reply_timeout or 0, MIN_REPLY_TIMEOUT)
        self.conn: Any = None
        self.sock: Any = None
        self.client_id: int | None = None
        self.topics: set[str] = set()
        self.wanted: set[str] = set()
        self.invalidations = False
        #: Called with the socket before it is closed (an event loop stops
        #: watching it).
        self.on_close: Callable[[Any], None] | None = None

    @property
    def connected(self) -> bool:
        conn = self.conn
        return conn is not None and conn._sock is not None and conn._sock is self.sock

    def connect(self) -> None:
        """(Re)connect and restore the fanout subscriptions."""
        if self.connected:
            return
        self.close()
        conn = self.conn = self.factory(health_check_interval=0, socket_timeout=None)
        try:
            conn.connect()
            # Asked now: a subscribed connection cannot run CLIENT ID (RESP2).
            conn.send_command("CLIENT", "ID")
            try:
                self.client_id = conn.read_response()
            except rexc.ResponseError:  # refused by an ACL: no tracking then
                self.client_id = None
        except NET_ERRORS:
            self.close()
            raise
        self.sock = conn._sock
        if self.wanted:
            self.set_topics(self.wanted)

    def subscribe_invalidations(self) -> None:
        """Receive tracking invalidations (ResponseError if the server refuses)."""
        self.connect()
        if self.client_id is None:
            raise rexc.ResponseError("CLIENT ID was refused, so tracking cannot redirect here")
        if not self.invalidations:
            self._command("SUBSCRIBE", INVALIDATE, expect=1)
            self.invalidations = True

    def set_topics(self, topics: set[str]) -> None:
        """PSUBSCRIBE to exactly ``topics``; returns once Redis confirmed."""
        self.wanted = set(topics)
        if not topics and not self.connected:
            return
        self.connect()
        gone, new = self.topics - topics, topics - self.topics
        if gone:
            self._command("PUNSUBSCRIBE", *gone, expect=len(gone))
        if new:
            self._command("PSUBSCRIBE", *new, expect=len(new))
        self.topics = set(topics)

    def _command(self, *args: Any, expect: int) -> None:
        conn = self.conn
        on_reply = self.on_reply
        try:
            conn.send_command(*args, check_health=False)
            deadline = monotonic() + self.reply_timeout
            while expect:
                left = deadline - monotonic()
                if left <= 0 or not conn.can_read(left):
                    raise rexc.TimeoutError(
                        f"Redis did not confirm {args[0]} within {self.reply_timeout:g}s")
                reply = conn.read_response()
                if reply[0] in (b"pmessage", b"message"):
                    on_reply(reply)
                else:
                    expect -= 1
        except NET_ERRORS:
            self.close()
            raise

    def pending(self) -> bool:
        """Whether replies are waiting to be read (never blocks)."""
        return self.wait(0)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` for a reply; a lost connection is closed and raised."""
        if not self.connected:
            return False
        try:
            return bool(self.conn.can_read(timeout))
        except NET_ERRORS:
            self.close()
            raise

    def read(self) -> None:
        """Hand every reply already received to the channel."""
        conn = self.conn
        on_reply = self.on_reply
        try:
            while conn.can_read(0):
                on_reply(conn.read_response())
        except NET_ERRORS:
            self.close()
            raise

    def close(self) -> None:
        conn, sock, self.conn, self.sock = self.conn, self.sock, None, None
        self.topics = set()
        self.invalidations = False
        if sock is not None and self.on_close is not None:
            try:
                self.on_close(sock)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        if conn is not None:
            try:
                conn.disconnect()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
