"""Observability events through real publish/consume cycles with failovers, on Redis.

Database 15, a key prefix and names of the test's own; the keys it made are
deleted afterwards.  Failovers: a first URL whose port is closed, and a
fault proxy that cuts the connection in use and then refuses new ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import require
from helpers.faultproxy import FaultProxy
from helpers.observers import CYCLE_COUNTS, consume_numbered, message_cycle, publish_numbered, recording
from helpers.sockets import free_port
from kombu import Connection, Exchange, Queue

pytestmark = pytest.mark.redis

LIVE = "redis://127.0.0.1:6379/15"
#: (n, requeued before) per delivery; the redelivery of 1 may come before or after 2.
EXPECTED_SEEN = [(0, False), (1, False), (1, True), (2, False)]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A ``global_keyprefix`` of the test's own; its keys are deleted afterwards."""
    require("redis")
    import redis

    name = f"observe-{uuid.uuid4().hex[:10]}:"
    yield name
    client = redis.Redis.from_url(LIVE)
    try:
        for key in client.scan_iter(match=f"*{name}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def entities(prefix: str) -> tuple[Exchange, Queue]:
    exchange = Exchange(f"{prefix}x", "direct", durable=False)
    return exchange, Queue(f"{prefix}q", exchange, routing_key="k", durable=False)


def _connection(url: str, prefix: str) -> Connection:
    return Connection(url, connect_timeout=2, transport_options={"global_keyprefix": prefix})


def test_failover_from_a_closed_port_then_a_full_cycle(prefix: str, entities: Any) -> None:
    exchange, queue = entities
    dead = free_port()
    conn = _connection(f"redis://127.0.0.1:{dead}/15;{LIVE}", prefix)
    try:
        with recording() as events:
            conn.connect()
            seen = message_cycle(conn, exchange, queue)
        errors = conn.recoverable_connection_errors
    finally:
        conn.close()
    assert sorted(seen) == EXPECTED_SEEN
    assert events.counts() == {**CYCLE_COUNTS, "kombu_connection_established": 1,
                               "kombu_connection_failover": 1}
    (failover,) = events.of("kombu_connection_failover")
    assert failover["from_url"] == f"redis://127.0.0.1:{dead}/15"
    assert failover["to_url"] == LIVE and failover["connection"] is conn
    assert isinstance(failover["reason"], errors)
    assert [e["url"] for e in events.of("kombu_connection_established")] == [LIVE]
    assert {e["queue"] for e in events.of("kombu_message_delivered")} == {queue.name}
    redelivered = [e["redelivered"] for e in events.of("kombu_message_delivered")]
    assert redelivered[seen.index((1, True))] is True and redelivered.count(True) == 1


def test_a_cut_connection_fails_over_and_the_retried_publish_counts_once(
        prefix: str, entities: Any) -> None:
    exchange, queue = entities
    with FaultProxy(("127.0.0.1", 6379)) as proxy:
        proxied = proxy.url("redis", "/15")
        conn = _connection(f"{proxied};{LIVE}", prefix)
        try:
            with recording() as events:
                publish_numbered(conn, exchange, queue, range(1))
                proxy.refuse()
                proxy.cut_all()
                publish_numbered(conn, exchange, queue, range(1, 3))
                seen = consume_numbered(conn, queue)
        finally:
            conn.close()
    assert sorted(seen) == EXPECTED_SEEN
    assert events.counts() == {**CYCLE_COUNTS, "kombu_connection_established": 2,
                               "kombu_connection_lost": 1, "kombu_connection_failover": 1}
    (lost,) = events.of("kombu_connection_lost")
    assert lost["url"] == proxied and lost["exc"] is not None
    (failover,) = events.of("kombu_connection_failover")
    assert (failover["from_url"], failover["to_url"]) == (proxied, LIVE)
    assert failover["reason"] is lost["exc"]
    assert [e["url"] for e in events.of("kombu_connection_established")] == [proxied, LIVE]
    assert [e["exc"] for e in events.of("kombu_after_publish")] == [None, None, None]
    # The order a metrics plugin sees: lost, failed over, connected again.
    names = [name for name, _ in events.events if name.startswith("kombu_connection")]
    assert names == ["kombu_connection_established", "kombu_connection_lost",
                     "kombu_connection_failover", "kombu_connection_established"]
