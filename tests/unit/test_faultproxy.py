"""Tests of the fault-injection proxy, against the local Redis and an echo server."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(20)

REDIS = ("127.0.0.1", 6379)
PING, PONG = b"PING\r\n", b"+PONG\r\n"


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    """A proxy to the local Redis; tests using it carry the ``redis`` marker
    (skipped when Redis is down, failed under CI=true)."""
    with FaultProxy(REDIS) as p:
        yield p


class EchoServer:
    """Echoes every byte back; records what each connection received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()[:2]
        self.received: list[bytearray] = []
        self.running = True
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            got = bytearray()
            self.received.append(got)
            thread = threading.Thread(target=self._echo, args=(conn, got), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _echo(self, conn: socket.socket, got: bytearray) -> None:
        conn.settimeout(0.1)
        with conn:
            while self.running:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                got.extend(data)
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def stop(self) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(2)
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.stop()


@pytest.fixture
def echo_proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(echo.address) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=2)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"connection closed after {data!r}, expected {n} bytes"
        data += chunk
    return data


def ping(sock: socket.socket) -> bytes:
    sock.sendall(PING)
    return recv_exact(sock, len(PONG))


def read_to_end(sock: socket.socket) -> tuple[bytes, str]:
    """Read until the peer closes: the bytes and "eof" or "reset"."""
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("kwargs", [
    {"upstream": ("10.0.0.1", 6379)},
    {"upstream": ("example.com", 6379)},
    {"listen_host": "0.0.0.0"},
    {"listen_host": "192.168.1.1"},
])
def test_refuses_non_loopback_addresses(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        FaultProxy(**kwargs)


def test_rejects_bad_arguments(echo_proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="direction"):
        echo_proxy.cut_after(3, "sideways")
    with pytest.raises(ValueError, match="n_bytes"):
        echo_proxy.cut_after(-1)
    with pytest.raises(ValueError, match="seconds"):
        echo_proxy.stall(-1)


def test_address_and_url(echo_proxy: FaultProxy) -> None:
    assert echo_proxy.port > 0
    assert echo_proxy.address == ("127.0.0.1", echo_proxy.port)
    assert echo_proxy.url("redis", "/5") == f"redis://127.0.0.1:{echo_proxy.port}/5"
    assert echo_proxy.url("amqp") == f"amqp://127.0.0.1:{echo_proxy.port}"


@pytest.mark.redis
def test_forwards_to_redis(proxy: FaultProxy) -> None:
    with connect(proxy) as a, connect(proxy) as b:
        for _ in range(3):
            assert ping(a) == PONG
            assert ping(b) == PONG


def test_forwards_bulk_data_both_ways(echo_proxy: FaultProxy, echo: EchoServer) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    with connect(echo_proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        assert recv_exact(sock, len(payload)) == payload
        sender.join(5)
    assert echo.received[0] == payload


def test_counters(echo_proxy: FaultProxy) -> None:
    assert (echo_proxy.connections_accepted, echo_proxy.open_connections) == (0, 0)
    with connect(echo_proxy) as a, connect(echo_proxy) as b:
        a.sendall(b"x" * 100)
        assert recv_exact(a, 100) == b"x" * 100
        b.sendall(b"hello")
        assert recv_exact(b, 5) == b"hello"
        assert echo_proxy.connections_accepted == 2
        assert echo_proxy.open_connections == 2
    # the loop counts right after each send, so the peer may see bytes first
    assert wait_for(lambda: (echo_proxy.bytes_upstream, echo_proxy.bytes_downstream) == (105, 105))
    assert wait_for(lambda: echo_proxy.open_connections == 0)
    assert echo_proxy.connections_accepted == 2


@pytest.mark.redis
def test_refuse_then_forward_on_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    with connect(proxy) as existing:
        proxy.refuse()
        with pytest.raises(ConnectionRefusedError):
            connect(proxy)
        assert ping(existing) == PONG  # open connections keep working
        proxy.forward()
        assert proxy.port == port
        with connect(proxy) as fresh:
            assert ping(fresh) == PONG
        assert ping(existing) == PONG


@pytest.mark.redis
def test_blackhole_swallows_requests(proxy: FaultProxy) -> None:
    with connect(proxy) as existing:
        assert ping(existing) == PONG
        proxy.blackhole()
        with connect(proxy) as fresh:
            for sock in (existing, fresh):
                sock.settimeout(0.3)
                sock.sendall(PING)
                with pytest.raises(socket.timeout):
                    sock.recv(16)
        assert proxy.bytes_downstream == len(PONG)  # nothing since blackhole()
        proxy.forward()
        with connect(proxy) as later:
            assert ping(later) == PONG


@pytest.mark.redis
def test_stall_until_forward(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert ping(sock) == PONG
        proxy.stall()
        sock.settimeout(0.3)
        sock.sendall(PING)
        with pytest.raises(socket.timeout):
            sock.recv(16)
        with connect(proxy) as fresh:  # new connections are accepted but stalled too
            fresh.settimeout(0.3)
            fresh.sendall(PING)
            with pytest.raises(socket.timeout):
                fresh.recv(16)
            proxy.forward()
            fresh.settimeout(2)
            assert recv_exact(fresh, len(PONG)) == PONG
        sock.settimeout(2)
        assert recv_exact(sock, len(PONG)) == PONG


@pytest.mark.redis
def test_stall_for_seconds_resumes_by_itself(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.stall(0.6)
        started = time.monotonic()
        assert ping(sock) == PONG
        assert time.monotonic() - started >= 0.4
        assert proxy.mode == "forward"


@pytest.mark.redis
def test_cut_after_downstream_mid_reply(proxy: FaultProxy) -> None:
    proxy.cut_after(3, "downstream")
    with connect(proxy) as sock:
        sock.sendall(PING)
        data, how = read_to_end(sock)
    assert data == b"+PO"
    assert how == "reset"
    assert proxy.bytes_downstream == 3
    assert wait_for(lambda: proxy.open_connections == 0)


@pytest.mark.redis
def test_cut_after_counts_from_now_on_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert ping(sock) == PONG
        proxy.cut_after(len(PONG) + 2, "downstream")
        assert ping(sock) == PONG
        sock.sendall(PING)
        assert read_to_end(sock) == (b"+P", "reset")


def test_cut_after_upstream_mid_request(echo_proxy: FaultProxy, echo: EchoServer) -> None:
    echo_proxy.cut_after(4, "upstream")
    with connect(echo_proxy) as sock:
        sock.sendall(b"0123456789")
        data, how = read_to_end(sock)
    assert (data, how) == (b"", "reset")
    assert wait_for(lambda: [bytes(got) for got in echo.received] == [b"0123"])
    assert echo_proxy.bytes_upstream == 4


def test_cut_after_both_directions_adds_up(echo_proxy: FaultProxy, echo: EchoServer) -> None:
    echo_proxy.cut_after(10, "both")
    with connect(echo_proxy) as sock:
        sock.sendall(b"abcdef")
        assert read_to_end(sock) == (b"abcd", "reset")
    assert bytes(echo.received[0]) == b"abcdef"


def test_forward_disarms_cut_after(echo_proxy: FaultProxy) -> None:
    echo_proxy.cut_after(2, "both")
    echo_proxy.forward()
    with connect(echo_proxy) as sock:
        sock.sendall(b"abcdef")
        assert recv_exact(sock, 6) == b"abcdef"


@pytest.mark.redis
def test_cut_all_resets_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as a, connect(proxy) as b:
        assert ping(a) == PONG and ping(b) == PONG
        proxy.cut_all()
        assert proxy.open_connections == 0
        assert read_to_end(a) == (b"", "reset")
        assert read_to_end(b) == (b"", "reset")
        with connect(proxy) as fresh:  # the proxy itself keeps forwarding
            assert ping(fresh) == PONG


def test_upstream_down_resets_client() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[:2]
    with FaultProxy(dead) as p:
        try:  # the reset may already reach connect() itself
            with connect(p) as sock:
                assert read_to_end(sock) == (b"", "reset")
        except ConnectionResetError:
            pass
        assert wait_for(lambda: p.connections_accepted == 1)
        assert p.open_connections == 0


@pytest.mark.redis
def test_stop_is_bounded_with_blackholed_client(proxy: FaultProxy) -> None:
    proxy.blackhole()
    with connect(proxy) as sock:
        sock.sendall(PING)
        assert wait_for(lambda: proxy.open_connections == 1)
        started = time.monotonic()
        proxy.stop()
        assert time.monotonic() - started < 3
        data, _ = read_to_end(sock)  # FIN, or RST if PING was still unread
        assert data == b""
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.stop()  # idempotent
    with pytest.raises(RuntimeError, match="cannot be restarted"):
        proxy.start()
