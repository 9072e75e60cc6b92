"""Fixtures of the Redis transport tests: a real Redis on 127.0.0.1:6379.

Tests use the database of the shared ``redis_url`` fixture, names of their
own (``names``) and a ``global_keyprefix`` of their own (``connect``), and
delete only the keys they created.  Extra redis-server processes (password,
TLS, Sentinel, restarts) run on free loopback ports in directories of their
own and are stopped afterwards; so are the fault proxies of ``proxies``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any, Callable, NamedTuple

import pytest
from helpers.faultproxy import FaultProxy, proxy_factory
from helpers.redis_server import RedisServer
from helpers.sockets import free_port

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


@pytest.fixture
def proxies(redis_url: str) -> Iterator[Callable[..., FaultProxy]]:
    """``proxies(upstream=(HOST, 6379))``: started fault proxies, stopped afterwards."""
    with proxy_factory((HOST, 6379)) as make:
        yield make


@pytest.fixture
def dead_host(proxies: Callable[..., FaultProxy]) -> Callable[[], FaultProxy]:
    """``dead_host()``: a proxy to a closed port; it accepts, counts, then resets."""
    return lambda: proxies((HOST, free_port()))


class Delivery(NamedTuple):
    """One message delivered to (and acked by) a consumer's callback."""

    body: Any
    tag: str
    redelivered: bool
    #: Who got it: a process, or a connection's life between reconnects.
    consumer: str


def _check_deliveries(deliveries: Iterable[tuple[Any, str, bool, str]], published: set[Any],
                      lost: set[str], republished: int = 0) -> None:
    """Assert that no message was lost and every duplicate is accounted for.

    ``deliveries`` are ``(body, delivery tag, redelivered, consumer)`` in the
    order they happened, one per acked delivery.  Every published body was
    delivered; a message (one delivery tag) delivered more than once was
    redelivered with the flag set, and every delivery but its last went to
    a consumer in ``lost`` (killed, or whose connection was cut).  At most
    ``republished`` bodies were stored twice (a publish retried after its
    connection failed with the command in flight: a new message with a tag
    of its own).
    """
    by_tag: dict[str, list[Delivery]] = defaultdict(list)
    tags_of: dict[Any, set[str]] = defaultdict(set)
    for delivery in map(Delivery._make, deliveries):
        by_tag[delivery.tag].append(delivery)
        tags_of[delivery.body].add(delivery.tag)
    missing = sorted(published - set(tags_of))
    assert not missing, f"{len(missing)} message(s) lost, e.g. {missing[:20]}"
    assert set(tags_of) == published, f"unknown bodies: {sorted(set(tags_of) - published)[:20]}"
    extra = sum(len(tags) - 1 for tags in tags_of.values())
    assert extra <= republished, f"{extra} bodies stored twice, {republished} publishes retried"
    for got in by_tag.values():
        for delivery in got[1:]:
            assert delivery.redelivered, f"{delivery} delivered again without the flag: {got}"
        for delivery in got[:-1]:
            assert delivery.consumer in lost, \
                f"{delivery} came back though {delivery.consumer} was alive and connected: {got}"


@pytest.fixture
def check_deliveries() -> Callable[..., None]:
    """``check_deliveries(deliveries, published, lost, republished=0)``."""
    return _check_deliveries
