"""Observability events through real publish/consume cycles with failovers, on RabbitMQ.

Queues and exchanges of the test's own in the default virtual host, deleted
afterwards; the only connections broken are the test's own (a first URL
whose port is closed, and a fault proxy that cuts the connection in use and
then refuses new ones).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import require, wait_until
from helpers.faultproxy import FaultProxy
from helpers.observers import CYCLE_COUNTS, consume_numbered, message_cycle, publish_numbered, recording
from helpers.sockets import free_port
from kombu import Connection, Exchange, Queue

pytestmark = pytest.mark.rabbitmq

LIVE = "amqp://guest:**@127.0.0.1:5672//"
LIVE_WITH_PASSWORD = "amqp://guest:guest@127.0.0.1:5672//"
#: (n, requeued before) per delivery; the redelivery of 1 may come before or after 2.
EXPECTED_SEEN = [(0, False), (1, False), (1, True), (2, False)]


@pytest.fixture
def entities() -> Iterator[tuple[Exchange, Queue]]:
    """A direct exchange and a queue of the test's own, deleted afterwards."""
    require("rabbitmq")
    name = f"observe-{uuid.uuid4().hex[:10]}"
    exchange = Exchange(f"{name}-x", "direct", durable=False, auto_delete=False)
    queue = Queue(f"{name}-q", exchange, routing_key="k", durable=False)
    yield exchange, queue
    with Connection(LIVE_WITH_PASSWORD, connect_timeout=5) as conn:
        channel = conn.channel()
        queue(channel).delete()
        exchange(channel).delete()
        channel.close()


def _wait_until_queued(queue: Queue, count: int) -> None:
    """Wait (bounded) until the broker holds ``count`` messages in ``queue``.

    Through the ``amqp`` library, so that the observers see no extra connection.
    """
    import amqp

    conn = amqp.Connection("127.0.0.1:5672", connect_timeout=5)
    conn.connect()
    try:
        channel = conn.channel()
        wait_until(lambda: channel.queue_declare(queue.name, passive=True)[1] == count,
                   timeout=10, message=f"{count} message(s) in {queue.name}")
    finally:
        conn.close()


def test_failover_from_a_closed_port_then_a_full_cycle(entities: Any) -> None:
    exchange, queue = entities
    dead = free_port()
    conn = Connection(f"amqp://guest:guest@127.0.0.1:{dead}//;{LIVE_WITH_PASSWORD}",
                      connect_timeout=2)
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
    assert failover["from_url"] == f"amqp://guest:**@127.0.0.1:{dead}//"
    assert failover["to_url"] == LIVE
    assert isinstance(failover["reason"], errors)
    assert [e["url"] for e in events.of("kombu_connection_established")] == [LIVE]
    delivered = events.of("kombu_message_delivered")
    assert {e["queue"] for e in delivered} == {queue.name}
    assert {e["exchange"] for e in delivered} == {exchange.name}
    redelivered = [e["redelivered"] for e in delivered]
    assert redelivered[seen.index((1, True))] is True and redelivered.count(True) == 1
    assert all("guest:guest" not in repr(e) for _, e in events.events if "url" in repr(e))


def test_a_cut_connection_fails_over_and_the_retried_publish_counts_once(
        entities: Any) -> None:
    exchange, queue = entities
    with FaultProxy(("127.0.0.1", 5672)) as proxy:
        proxied = f"amqp://guest:guest@127.0.0.1:{proxy.port}//"
        conn = Connection(f"{proxied};{LIVE_WITH_PASSWORD}", connect_timeout=2)
        try:
            with recording() as events:
                publish_numbered(conn, exchange, queue, range(1))
                _wait_until_queued(queue, 1)  # not lost in flight by the cut
                proxy.refuse()
                proxy.cut_all()
                publish_numbered(conn, exchange, queue, range(1, 3))
                seen = consume_numbered(conn, queue)
        finally:
            conn.close()
    assert sorted(seen) == EXPECTED_SEEN
    assert events.counts() == {**CYCLE_COUNTS, "kombu_connection_established": 2,
                               "kombu_connection_lost": 1, "kombu_connection_failover": 1}
    masked = proxied.replace("guest:guest", "guest:**")
    (lost,) = events.of("kombu_connection_lost")
    assert lost["url"] == masked and lost["exc"] is not None
    (failover,) = events.of("kombu_connection_failover")
    assert (failover["from_url"], failover["to_url"]) == (masked, LIVE)
    assert failover["reason"] is lost["exc"]
    assert [e["url"] for e in events.of("kombu_connection_established")] == [masked, LIVE]
    assert [e["exc"] for e in events.of("kombu_after_publish")] == [None, None, None]
    names = [name for name, _ in events.events if name.startswith("kombu_connection")]
    assert names == ["kombu_connection_established", "kombu_connection_lost",
                     "kombu_connection_failover", "kombu_connection_established"]
