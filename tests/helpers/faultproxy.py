"""A fault-injection TCP proxy for tests (loopback only).

Tests point a client at the proxy instead of the broker, then switch the
proxy between modes at runtime to produce faults a real broker cannot
produce on demand: refused connections, replies that never come, stalls,
connections cut in the middle of a frame and a broker "restart" that resets
every client::

    with FaultProxy(("127.0.0.1", 6379)) as proxy:
        conn = Connection(proxy.url("redis", "/9"))
        ...
        proxy.cut_all()

Each mode method replaces the previous mode.  End of stream from either
side closes the whole connection once the bytes in flight are delivered (no
half-close).  One selector thread does all the socket work; sockets are
non-blocking and the loop wakes at least every 50 ms, so mode changes apply
promptly and :meth:`FaultProxy.stop` is bounded.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

FORWARD, REFUSE, BLACKHOLE, STALL = "forward", "refuse", "blackhole", "stall"
_DIRECTIONS = ("upstream", "downstream", "both")
_POLL = 0.05  # longest time the loop sleeps before looking at the mode again
_CONNECT_TIMEOUT = 1.0
_JOIN_TIMEOUT = 2.0
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def _loopback(host: str, what: str) -> str:
    """Return ``host`` if it is a loopback address, else raise ValueError."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(
        f"{what} {host!r} is not a loopback address: "
        "FaultProxy only talks to 127.0.0.0/8 or ::1")


def _close(sock: socket.socket, reset: bool) -> None:
    """Close ``sock``; with ``reset`` the peer gets a RST instead of a FIN."""
    if reset:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
    sock.close()


class _Conn:
    """One accepted client, its upstream socket and the bytes in flight."""

    __slots__ = ("client", "upstream", "to_client", "to_upstream",
                 "blackholed", "budget", "cut_dir", "ending", "closed")

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client = client
        self.upstream = upstream  # None: accepted while blackholed
        self.to_client = bytearray()
        self.to_upstream = bytearray()
        self.blackholed = upstream is None
        self.budget: int | None = None  # bytes left before a cut_after() cut
        self.cut_dir = "both"
        self.ending: str | None = None  # "close"/"reset" once buffers drain
        self.closed = False


class FaultProxy:
    """A TCP proxy from an ephemeral loopback port to ``upstream``.

    Modes: :meth:`forward` (default), :meth:`refuse`, :meth:`blackhole`,
    :meth:`stall`, :meth:`cut_after`; :meth:`cut_all` resets every open
    connection.  ``mode`` names the current mode.  Counters (bytes are
    counted once sent on): ``connections_accepted``, ``open_connections``,
    ``bytes_upstream`` (client to server) and ``bytes_downstream``.
    """

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 6379),
                 listen_host: str = "127.0.0.1") -> None:
        host, port = upstream
        self.upstream = (_loopback(host, "upstream host"), int(port))
        self.listen_host = _loopback(listen_host, "listen host")
        self.port = 0
        self.mode = FORWARD
        self.connections_accepted = 0
        self.bytes_upstream = 0
        self.bytes_downstream = 0
        self._stall_until: float | None = None
        self._cut: tuple[int, str] | None = None
        self._conns: set[_Conn] = set()
        self._lock = threading.RLock()
        self._sel = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` clients connect to."""
        return self.listen_host, self.port

    @property
    def open_connections(self) -> int:
        """Number of client connections currently open through the proxy."""
        return len(self._conns)

    def url(self, scheme: str, path: str = "") -> str:
        """A URL to the proxy, e.g. ``url("redis", "/5")``."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{scheme}://{host}:{self.port}{path}"

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen and start forwarding in a daemon thread."""
        if self._stopping.is_set():
            raise RuntimeError("a stopped FaultProxy cannot be restarted: create a new one")
        with self._lock:
            if self._thread is None:
                if self._listener is None and self.mode != REFUSE:
                    self._listen()
                self._thread = threading.Thread(
                    target=self._run, name=f"FaultProxy:{self.port}", daemon=True)
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop (bounded wait) and close every socket; idempotent."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT)
        with self._lock:
            for conn in list(self._conns):
                self._drop(conn, reset=False)
            self._unlisten()
            self._sel.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- modes ---------------------------------------------------------------

    def forward(self) -> None:
        """Forward normally; re-open the listening port if it was refusing."""
        with self._lock:
            self._set_mode(FORWARD)

    def refuse(self) -> None:
        """Close the listening socket: new connects get ECONNREFUSED.

        Open connections keep forwarding; :meth:`forward` listens again on
        the same port.
        """
        with self._lock:
            self._set_mode(REFUSE)

    def blackhole(self) -> None:
        """Swallow everything: nothing is forwarded in either direction.

        Applies to open and new connections (new ones never reach upstream).
        A blackholed connection has lost bytes, so it stays blackholed after
        :meth:`forward`; only connections made afterwards forward again.
        """
        with self._lock:
            self._set_mode(BLACKHOLE)
            for conn in self._conns:
                conn.blackholed = True
                conn.to_client.clear()
                conn.to_upstream.clear()

    def stall(self, seconds: float | None = None) -> None:
        """Stop reading from every socket until :meth:`forward` or ``seconds`` pass."""
        if seconds is not None and seconds < 0:
            raise ValueError(f"stall seconds must be >= 0 or None, got {seconds!r}")
        with self._lock:
            self._set_mode(STALL)
            if seconds is not None:
                self._stall_until = time.monotonic() + seconds

    def cut_after(self, n_bytes: int, direction: str = "upstream") -> None:
        """Forward ``n_bytes`` more bytes per connection, then reset it.

        ``direction`` is "upstream" (client to server), "downstream" or
        "both" (bytes of both directions added up).  Exactly ``n_bytes`` pass;
        then both sides of the connection are reset.  Applies to open
        connections (counting from now) and to new ones.
        """
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        if n_bytes < 0:
            raise ValueError(f"n_bytes must be >= 0, got {n_bytes!r}")
        with self._lock:
            self._set_mode(FORWARD)
            self._cut = (n_bytes, direction)
            for conn in self._conns:
                self._arm(conn)

    def cut_all(self) -> None:
        """Reset every open connection now (a broker restart, as clients see it)."""
        with self._lock:
            for conn in list(self._conns):
                self._drop(conn, reset=True)

    # -- internals (called with the lock held) -------------------------------

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        self._stall_until = None
        self._cut = None
        for conn in self._conns:
            conn.budget = None
        if mode == REFUSE:
            while self._accept():  # clients whose connect() already succeeded
                pass
            self._unlisten()
        elif self._listener is None and not self._stopping.is_set():
            self._listen()

    def _listen(self) -> None:
        family = socket.AF_INET6 if ":" in self.listen_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.listen_host, self.port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._sel.register(sock, _READ, None)

    def _unlisten(self) -> None:
        if self._listener is not None:
            self._sel.unregister(self._listener)
            self._listener.close()
            self._listener = None

    def _arm(self, conn: _Conn) -> None:
        assert self._cut is not None
        conn.budget, conn.cut_dir = self._cut
        if conn.budget == 0 and conn.ending is None:
            conn.ending = "reset"

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._stall_until is not None and time.monotonic() >= self._stall_until:
                    self._set_mode(FORWARD)
                for conn in list(self._conns):
                    self._settle(conn)
            for key, mask in self._sel.select(_POLL):
                with self._lock:
                    if self._stopping.is_set():
                        return
                    if key.data is None:
                        self._accept()
                    else:
                        conn, is_client = key.data
                        self._pump(conn, is_client, mask)

    def _accept(self) -> bool:
        """Accept one pending client; False if there was none."""
        if self._listener is None:
            return False
        try:
            client, _ = self._listener.accept()
        except OSError:  # nothing pending (stale event) or a client gave up
            return False
        self.connections_accepted += 1
        upstream = None
        if self.mode != BLACKHOLE:
            try:
                upstream = socket.create_connection(self.upstream, timeout=_CONNECT_TIMEOUT)
            except OSError:  # upstream down: the client sees a reset
                _close(client, reset=True)
                return True
        conn = _Conn(client, upstream)
        for sock in (client, upstream):
            if sock is not None:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conns.add(conn)
        if self._cut is not None:
            self._arm(conn)
        self._settle(conn)
        return True

    def _pump(self, conn: _Conn, is_client: bool, mask: int) -> None:
        """Handle events of one side (the client if ``is_client``) of ``conn``."""
        if conn.closed:
            return
        if mask & _WRITE:
            self._send(conn, to_client=is_client)
        if mask & _READ and not conn.closed and not conn.ending and self.mode != STALL:
            sock = conn.client if is_client else conn.upstream
            assert sock is not None
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                self._drop(conn, reset=True)
                return
            if not data:
                conn.ending = "close"
            elif not conn.blackholed:
                if conn.budget is not None:
                    data = self._spend(conn, data, "upstream" if is_client else "downstream")
                (conn.to_upstream if is_client else conn.to_client).extend(data)
                self._send(conn, to_client=not is_client)
        self._settle(conn)

    def _spend(self, conn: _Conn, data: bytes, direction: str) -> bytes:
        """Trim ``data`` to the connection's cut budget; arm the cut when spent."""
        assert conn.budget is not None
        if conn.cut_dir not in (direction, "both"):
            return data
        if len(data) >= conn.budget:
            data = data[:conn.budget]
            conn.budget = 0
            conn.ending = "reset"
        else:
            conn.budget -= len(data)
        return data

    def _send(self, conn: _Conn, to_client: bool) -> None:
        buf = conn.to_client if to_client else conn.to_upstream
        sock = conn.client if to_client else conn.upstream
        if not buf or sock is None or conn.closed:
            return
        try:
            sent = sock.send(buf)
        except BlockingIOError:
            return
        except OSError:
            self._drop(conn, reset=True)
            return
        del buf[:sent]
        if to_client:
            self.bytes_downstream += sent
        else:
            self.bytes_upstream += sent

    def _settle(self, conn: _Conn) -> None:
        """Finish an ending connection, or update what the selector waits for."""
        if conn.closed:
            return
        if conn.ending and not conn.to_client and not conn.to_upstream:
            self._drop(conn, reset=conn.ending == "reset")
            return
        read = 0 if conn.ending or self.mode == STALL else _READ
        self._want(conn.client, (0 if conn.to_upstream else read)
                   | (_WRITE if conn.to_client else 0), (conn, True))
        if conn.upstream is not None:
            self._want(conn.upstream, (0 if conn.to_client else read)
                       | (_WRITE if conn.to_upstream else 0), (conn, False))

    def _want(self, sock: socket.socket, events: int, data: tuple[_Conn, bool]) -> None:
        try:
            key: selectors.SelectorKey | None = self._sel.get_key(sock)
        except KeyError:
            key = None
        if key is None:
            if events:
                self._sel.register(sock, events, data)
        elif not events:
            self._sel.unregister(sock)
        elif key.events != events:
            self._sel.modify(sock, events, data)

    def _drop(self, conn: _Conn, reset: bool) -> None:
        conn.closed = True
        self._conns.discard(conn)
        for sock in (conn.client, conn.upstream):
            if sock is not None:
                try:
                    self._sel.unregister(sock)
                except KeyError:
                    pass
                _close(sock, reset)


@contextmanager
def proxy_factory(upstream: tuple[str, int]) -> Iterator[Callable[..., FaultProxy]]:
    """``make(upstream=upstream)`` starts a proxy; every one made is stopped on exit."""
    made: list[FaultProxy] = []

    def make(to: tuple[str, int] = upstream) -> FaultProxy:
        proxy = FaultProxy(to).start()
        made.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in made:
            proxy.stop()
