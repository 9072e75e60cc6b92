"""Connecting, declaring, counting, purging and deleting."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from kombu import Connection, Consumer, Exchange, Queue
from kombu.testing.fixtures import (
    LIMITS,
    collect,
    declared,
    name,
    need,
    nothing_more,
    skip,
    wait_for_count,
)
from kombu.testing.requirements import Requirements

__all__ = ("TestTransportBasics", "TestTransportSimple")


class TestTransportBasics:
    """Connections and queue management."""

    def test_connect_and_close(self, transport_url: str) -> None:
        conn = Connection(transport_url)
        states = [conn.connected]
        conn.connect()
        states.append(conn.connected)
        conn.close()
        states.append(conn.connected)
        assert states == [False, True, False]

    def test_unreachable_broker_raises_a_connection_error(
            self, transport_url: str, transport_unreachable_url: str | None,
            transport_requirements: Requirements) -> None:
        """An unreachable broker is never reported as connected, and fails with one
        of ``connection_errors``, so that ``ensure_connection()`` retries it."""
        need(transport_requirements, "unreachable")
        if transport_unreachable_url is None:
            skip("kombu kit: the transport has no default_port; provide a "
                 "transport_unreachable_url fixture to test an unreachable broker")
        conn = Connection(transport_unreachable_url, connect_timeout=2)
        with pytest.raises(conn.connection_errors) as excinfo:
            conn.connect()
        assert not conn.connected, "an unreachable broker is reported as connected"
        errors: list[BaseException] = []
        with pytest.raises(Exception) as retried:
            conn.ensure_connection(errback=lambda exc, interval: errors.append(exc),
                                   max_retries=1, interval_start=0, interval_step=0,
                                   timeout=LIMITS.wait)
        assert len(errors) >= 1, (
            f"ensure_connection did not retry {excinfo.value!r}: it is not in connection_errors")
        assert not isinstance(retried.value, AssertionError)
        conn.close()

    def test_drain_events_times_out(self, kombu_connection: Connection) -> None:
        queue = Queue(name("q"), Exchange(name("x")), routing_key="rk")
        with Consumer(kombu_connection, [queue], callbacks=[lambda b, m: None]):
            start = time.monotonic()
            with pytest.raises(socket.timeout):
                kombu_connection.drain_events(timeout=0.3)
            elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < 5

    def test_ensure_raises_a_drain_timeout_without_reconnecting(
            self, kombu_connection: Connection) -> None:
        """A ``drain_events`` timeout through ``ensure`` is no lost connection."""
        before = kombu_connection.connection
        errors: list[Any] = []
        drain = kombu_connection.ensure(kombu_connection, kombu_connection.drain_events,
                                        max_retries=3,
                                        errback=lambda exc, interval: errors.append(exc))
        with pytest.raises(socket.timeout):
            drain(timeout=0.1)
        assert errors == [] and kombu_connection.connection is before

    def test_passive_declare_of_a_missing_queue_fails(self, transport_url: str) -> None:
        with Connection(transport_url) as conn:
            channel = conn.channel()
            missing = name("q")
            with pytest.raises(conn.channel_errors):
                channel.queue_declare(missing, passive=True)

    def test_passive_declare_of_an_existing_queue_succeeds(
            self, kombu_connection: Connection) -> None:
        queue, _ = declared(kombu_connection)
        ok = kombu_connection.default_channel.queue_declare(queue.name, passive=True)
        assert ok is not None and ok.queue == queue.name

    def test_queue_declare_counts(self, kombu_connection: Connection,
                                  transport_requirements: Requirements) -> None:
        need(transport_requirements, "queue_size")
        queue, producer = declared(kombu_connection)
        bound = queue(kombu_connection.default_channel)
        assert bound.queue_declare(passive=True).message_count == 0
        for i in range(3):
            producer.publish({"i": i})
        assert wait_for_count(bound, 3) == 3

    def test_purge_counts_and_empties(self, kombu_connection: Connection,
                                      transport_requirements: Requirements) -> None:
        queue, producer = declared(kombu_connection)
        bound = queue(kombu_connection.default_channel)
        for i in range(4):
            producer.publish({"i": i})
        if transport_requirements.declares("queue_size"):
            assert wait_for_count(bound, 4) == 4
        else:
            time.sleep(0.2)  # let an asynchronous broker route them
        assert bound.purge() == 4
        assert nothing_more(kombu_connection, queue) == []
        producer.publish({"after": "purge"})
        assert [b for b, _ in collect(kombu_connection, queue, 1)] == [{"after": "purge"}]

    def test_delete_removes_the_messages(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        for i in range(3):
            producer.publish({"i": i})
        channel = kombu_connection.default_channel
        time.sleep(0.1)  # let an asynchronous broker route them
        queue(channel).delete()
        queue(channel).declare()
        assert nothing_more(kombu_connection, queue, wait=0.5) == [], \
            "messages of a deleted queue came back when it was declared again"

    def test_basic_get(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        bound = queue(kombu_connection.default_channel)
        assert bound.get() is None
        producer.publish({"n": 1})
        message = None
        deadline = time.monotonic() + LIMITS.wait
        while message is None and time.monotonic() < deadline:
            message = bound.get()
        assert message is not None and message.payload == {"n": 1}
        message.ack()
        assert bound.get() is None

    def test_persistence_across_a_reconnect(self, transport_url: str,
                                            transport_requirements: Requirements) -> None:
        need(transport_requirements, "persistence")
        with Connection(transport_url) as first:
            queue, producer = declared(first)
            producer.publish({"kept": 1})
            producer.publish({"kept": 2})
            time.sleep(0.1)  # let an asynchronous broker route them
        with Connection(transport_url) as second:
            second.connect()
            got = [b for b, _ in collect(second, queue, 2)]
        assert got == [{"kept": 1}, {"kept": 2}], "messages did not survive a reconnect"


class TestTransportSimple:
    """SimpleQueue and SimpleBuffer."""

    def test_simple_queue(self, kombu_connection: Connection) -> None:
        with kombu_connection.SimpleQueue(name("simple")) as q:
            q.put({"hello": "world"})
            q.put("text")
            first = q.get(timeout=LIMITS.wait)
            assert first.payload == {"hello": "world"}
            first.ack()
            second = q.get(timeout=LIMITS.wait)
            assert second.payload == "text"
            second.ack()
            with pytest.raises(q.Empty):
                q.get(timeout=0.3)
            with pytest.raises(q.Empty):
                q.get_nowait()
            q.clear()

    def test_simple_buffer(self, kombu_connection: Connection) -> None:
        with kombu_connection.SimpleBuffer(name("buffer")) as b:
            b.put({"n": 1})
            assert b.get(timeout=LIMITS.wait).payload == {"n": 1}


