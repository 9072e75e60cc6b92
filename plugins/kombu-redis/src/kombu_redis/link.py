"""A channel's own connection to Redis: commands, pipelines, replies owed.

Every command of a channel (publish, fetch, bindings, acks written in
callbacks) goes through one :class:`Link`, whose :meth:`Link._run` is the
only retry loop.  Commands may be written without waiting for their replies
(:meth:`Link.send_nowait`); the replies are read before the next command on
the connection, and the tokens sent with them (acks) are handed to
``on_lost`` if the connection is lost before that.

The connection comes from a factory (the channel's pool settings), so a
different client (a cluster node, say) plugs in through the factory, and a
non-blocking reader can use :attr:`Link.sock` to watch the socket.
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any, Callable

from redis import exceptions as rexc

from kombu_redis.scripts import Script

__all__ = ("NET_ERRORS", "Link")

#: Errors that mean the connection is (or may be) lost.
NET_ERRORS = (rexc.ConnectionError, rexc.TimeoutError, OSError)


class Link:
    """One Redis connection of a channel (not from the pool), thread-safe."""

    def __init__(self, factory: Callable[..., Any], retry_on_timeout: bool = False,
                 on_lost: Callable[[list[Any]], None] | None = None) -> None:
        #: ``factory(**overrides)``: a new, unconnected redis-py connection.
        self.factory = factory
        self.retry_on_timeout = retry_on_timeout
        #: Called with the tokens of replies that will not come (lost connection).
        self.on_lost = on_lost
        #: Held while a command runs; reentrant.
        self.lock = threading.RLock()
        self._conn: Any = None
        self._unread = 0
        self._unconfirmed: list[Any] = []

    # -- state ---------------------------------------------------------------
    @property
    def sock(self) -> Any:
        """The connected socket, or None."""
        conn = self._conn
        return None if conn is None else conn._sock

    @property
    def connected(self) -> bool:
        return self.sock is not None

    @property
    def owed(self) -> int:
        """Replies written without waiting and not read yet."""
        return self._unread

    def open(self, handshake_timeout: float | None, socket_timeout: float | None) -> None:
        """Connect and PING within ``handshake_timeout``, then keep ``socket_timeout``."""
        conn = self._conn = self.factory(socket_timeout=handshake_timeout or socket_timeout)
        self.call("PING")
        conn.socket_timeout = socket_timeout
        if conn._sock is not None:
            conn._sock.settimeout(socket_timeout)

    def _get(self) -> Any:
        conn = self._conn
        if conn is None:
            conn = self._conn = self.factory()
        return conn

    def _ready(self, conn: Any) -> None:
        """Connect ``conn`` if needed, and read the replies it still owes."""
        if conn._sock is None:
            self._lost(conn)
            conn.connect()  # (again) through Sentinel, if that is the pool
        elif self._unread:
            while self._unread:
                try:
                    conn.read_response()
                except rexc.ResponseError as exc:
                    self._error_reply(exc)
                self._unread -= 1
            self._unconfirmed = []

    def _lost(self, conn: Any) -> None:
        """``conn`` is (being) disconnected: replies owed on it will not come."""
        conn.disconnect()
        self._unread = 0
        if self._unconfirmed:
            tokens, self._unconfirmed = self._unconfirmed, []
            if self.on_lost is not None:
                self.on_lost(tokens)

    def _error_reply(self, exc: rexc.ResponseError) -> None:
        """An error reply to a command written without waiting (ignored here; a
        cluster node's link sends redirected acks again)."""

    def _retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether to run a command again after ``exc`` (retry_on_timeout: once)."""
        return (attempt == 0 and self.retry_on_timeout
                and isinstance(exc, (rexc.TimeoutError, TimeoutError)))

    def _run(self, packed: Any, count: int | None) -> Any:
        """Send ``packed`` and read its replies: the retry loop of every command.

        ``count`` None: one reply, an error reply raised; else ``count``
        replies as a list, error replies in it as exceptions.
        """
        conn = self._get()
        with self.lock:
            attempt = 0
            while True:
                try:
                    self._ready(conn)
                    conn.send_packed_command(packed)
                    if count is None:
                        return conn.read_response()
                    results: list[Any] = []
                    for _ in range(count):
                        try:
                            results.append(conn.read_response())
                        except rexc.ResponseError as exc:
                            results.append(exc)
                    return results
                except NET_ERRORS as exc:
                    self._lost(conn)
                    if not self._retry(exc, attempt):
                        raise
                    attempt += 1

    # -- commands ------------------------------------------------------------
    def call(self, *args: Any) -> Any:
        """Run one command."""
        packed = self._get().pack_command(*args)
        if len(packed) > 1:  # a large value: one send instead of three
            packed = [b"".join(packed)]
        return self._run(packed, None)

    def pipe(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Run several commands in one round trip; raise the first error reply."""
        results: list[Any] = self._run(self._get().pack_commands(commands), len(commands))
        for result in results:
            if isinstance(result, rexc.ResponseError):
                raise result
        return results

    def script(self, script: Script, keys: list[Any], argv: list[Any]) -> Any:
        """Run ``script`` (loaded first if the server does not have it)."""
        try:
            return self.call(*script.args(keys, argv))
        except rexc.NoScriptError:
            self.call("SCRIPT", "LOAD", script.source)
            return self.call(*script.args(keys, argv))

    def pipe_scripts(self, script: Script, calls: list[tuple[list[Any], list[Any]]]) -> list[Any]:
        """Run ``script`` once per ``(keys, argv)`` in one round trip."""
        commands = [tuple(script.args(keys, argv)) for keys, argv in calls]
        try:
            return self.pipe(*commands)
        except rexc.NoScriptError:
            self.call("SCRIPT", "LOAD", script.source)
            return self.pipe(*commands)

    def send_nowait(self, commands: list[tuple[Any, ...]], tokens: list[Any]) -> None:
        """Write ``commands`` without reading the replies (read before the next command).

        If the connection is lost before the replies are read, ``tokens``
        go to ``on_lost``.  A failure to write raises (the tokens are not
        recorded then).
        """
        conn = self._get()
        with self.lock:
            try:
                self._ready(conn)
                # No health check: its PING would read the replies owed here.
                conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            except NET_ERRORS:
                self._lost(conn)
                raise
            self._unread += len(commands)
            self._unconfirmed += tokens

    def confirm(self, deadline: float) -> bool:
        """Read the replies owed until ``deadline``; False if the connection was lost
        (or there is none)."""
        with self.lock:
            conn = self._conn
            if conn is None:
                return False
            try:
                while self._unread:
                    left = deadline - monotonic()
                    if conn._sock is None or left <= 0 or not conn.can_read(left):
                        raise rexc.TimeoutError("Redis did not confirm the replies in time")
                    try:
                        conn.read_response()
                    except rexc.ResponseError as exc:
                        self._error_reply(exc)
                    self._unread -= 1
            except (*NET_ERRORS, rexc.InvalidResponse):
                self._lost(conn)
                return False
            self._unconfirmed = []
            return True

    def send_fresh(self, commands: list[tuple[Any, ...]], timeout: float) -> None:
        """Run ``commands`` on a new connection bounded by ``timeout``, then close it.

        Error replies are ignored; connection errors raise.
        """
        fresh = self.factory(socket_timeout=timeout, socket_connect_timeout=timeout,
                             health_check_interval=0)
        try:
            fresh.connect()
            fresh.send_packed_command(fresh.pack_commands(commands), check_health=False)
            for _ in commands:
                try:
                    fresh.read_response()
                except rexc.ResponseError:
                    pass
        finally:
            fresh.disconnect()

    def disconnect(self) -> None:
        """Drop the connection (replies owed go to ``on_lost``); the next command reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                self._lost(conn)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
