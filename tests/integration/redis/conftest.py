"""Fixtures of the Redis transport tests: a real Redis on 127.0.0.1:6379.

Tests use the database of the shared ``redis_url`` fixture, names of their
own (``names``) and a ``global_keyprefix`` of their own (``connect``), and
delete only the keys they created.  Extra redis-server processes (password,
TLS, Sentinel, restarts) run on free loopback ports in directories of their
own and are stopped afterwards.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.redis_server import RedisServer

redis = pytest.importorskip("redis", reason="kombu-redis needs redis-py (pip install redis)")

HOST = "127.0.0.1"


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    """A plain redis-py client on the test database (the one ``redis_url`` names)."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def names(raw: Any) -> Iterator[Callable[[str], str]]:
    """Makes unique names; deletes every key that contains one afterwards."""
    made: list[str] = []

    def make(kind: str) -> str:
        name = f"kr-{kind}-{uuid.uuid4().hex[:10]}"
        made.append(name)
        return name

    yield make
    for name in made:
        for key in raw.scan_iter(match=f"*{name}*", count=1000):
            raw.delete(key)


@pytest.fixture
def connect(redis_url: str, names: Callable[[str], str]) -> Iterator[Callable[..., Any]]:
    """Makes connections whose keys all carry a unique ``global_keyprefix``.

    ``connect(**transport_options)``; pass ``global_keyprefix=''`` for the
    unprefixed layout.  Connections are closed after the test.
    """
    from kombu import Connection

    prefix = names("p") + ":"
    made: list[Any] = []

    def make(url: str | None = None, **options: Any) -> Any:
        options.setdefault("global_keyprefix", prefix)
        conn = Connection(url or redis_url, transport_options=options)
        made.append(conn)
        return conn

    make.prefix = prefix  # type: ignore[attr-defined]
    yield make
    for conn in made:
        conn.close()


def _drain(conn: Any, got: list[Any], n: int, timeout: float = 10.0) -> None:
    """Drain events until ``got`` holds ``n`` items (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while len(got) < n:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"received {len(got)} of {n} messages within {timeout}s"
        try:
            conn.drain_events(timeout=min(remaining, 1.0))
        except socket.timeout:
            pass


def _quiet(conn: Any, seconds: float = 0.3) -> bool:
    """True if no message arrives within ``seconds``."""
    try:
        conn.drain_events(timeout=seconds)
    except socket.timeout:
        return True
    return False


@pytest.fixture
def drain() -> Callable[..., None]:
    """``drain(conn, got, n, timeout=10)``: drain until ``len(got) >= n``."""
    return _drain


@pytest.fixture
def quiet() -> Callable[..., bool]:
    """``quiet(conn, seconds=0.3)``: True if nothing arrives meanwhile."""
    return _quiet


@pytest.fixture
def redis_server() -> Iterator[Callable[..., RedisServer]]:
    """Starts extra redis-server processes; stops them after the test."""
    started: list[RedisServer] = []

    def start(*args: str, **kwargs: Any) -> RedisServer:
        server = RedisServer(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
