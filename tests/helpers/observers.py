"""An observer plugin that records every kombu observability event (for tests).

::

    with recording() as events:
        ...publish, consume...
    assert events.count("kombu_before_publish") == 3
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kombu


class EventRecorder:
    """Implements every event hook; keeps ``(hook, arguments)`` in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _add(self, hook: str, **kwargs: Any) -> None:
        with self._lock:
            self.events.append((hook, kwargs))

    def count(self, hook: str) -> int:
        return sum(1 for name, _ in self.events if name == hook)

    def counts(self) -> Counter[str]:
        return Counter(name for name, _ in self.events)

    def of(self, hook: str) -> list[dict[str, Any]]:
        """The arguments of every ``hook`` event, in order."""
        return [kwargs for name, kwargs in self.events if name == hook]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()

    @kombu.hookimpl
    def kombu_connection_established(self, connection: Any, url: str) -> None:
        self._add("kombu_connection_established", connection=connection, url=url)

    @kombu.hookimpl
    def kombu_connection_lost(self, connection: Any, url: str, exc: Any) -> None:
        self._add("kombu_connection_lost", connection=connection, url=url, exc=exc)

    @kombu.hookimpl
    def kombu_connection_failover(self, connection: Any, from_url: str, to_url: str,
                                  reason: Any) -> None:
        self._add("kombu_connection_failover", connection=connection, from_url=from_url,
                  to_url=to_url, reason=reason)

    @kombu.hookimpl
    def kombu_before_publish(self, producer: Any, connection: Any, exchange: str,
                             routing_key: str, headers: Any, properties: Any, body_size: int,
                             content_type: Any, priority: int) -> None:
        self._add("kombu_before_publish", producer=producer, connection=connection,
                  exchange=exchange, routing_key=routing_key, headers=dict(headers),
                  properties=dict(properties), body_size=body_size,
                  content_type=content_type, priority=priority)

    @kombu.hookimpl
    def kombu_after_publish(self, exchange: str, routing_key: str, exc: Any) -> None:
        self._add("kombu_after_publish", exchange=exchange, routing_key=routing_key, exc=exc)

    @kombu.hookimpl
    def kombu_message_delivered(self, consumer: Any, message: Any, queue: Any, exchange: str,
                                routing_key: str, headers: Any, delivery_tag: Any,
                                body_size: int, redelivered: bool) -> None:
        self._add("kombu_message_delivered", consumer=consumer, message=message, queue=queue,
                  exchange=exchange, routing_key=routing_key, headers=dict(headers),
                  delivery_tag=delivery_tag, body_size=body_size, redelivered=redelivered)

    @kombu.hookimpl
    def kombu_message_handled(self, consumer: Any, message: Any, queue: Any,
                              exc: Any) -> None:
        self._add("kombu_message_handled", consumer=consumer, message=message, queue=queue,
                  exc=exc)

    @kombu.hookimpl
    def kombu_message_acked(self, message: Any, delivery_tag: Any, multiple: bool) -> None:
        self._add("kombu_message_acked", message=message, delivery_tag=delivery_tag,
                  multiple=multiple)

    @kombu.hookimpl
    def kombu_message_rejected(self, message: Any, delivery_tag: Any) -> None:
        self._add("kombu_message_rejected", message=message, delivery_tag=delivery_tag)

    @kombu.hookimpl
    def kombu_message_requeued(self, message: Any, delivery_tag: Any) -> None:
        self._add("kombu_message_requeued", message=message, delivery_tag=delivery_tag)

    @kombu.hookimpl
    def kombu_consumer_started(self, consumer: Any, queue: str, consumer_tag: str,
                               no_ack: bool) -> None:
        self._add("kombu_consumer_started", consumer=consumer, queue=queue,
                  consumer_tag=consumer_tag, no_ack=no_ack)

    @kombu.hookimpl
    def kombu_consumer_cancelled(self, consumer: Any, queue: str, consumer_tag: str) -> None:
        self._add("kombu_consumer_cancelled", consumer=consumer, queue=queue,
                  consumer_tag=consumer_tag)


@contextmanager
def recording() -> Iterator[EventRecorder]:
    """Register an :class:`EventRecorder` for the block, then unregister it."""
    recorder = EventRecorder()
    kombu.register_plugin(recorder)
    try:
        yield recorder
    finally:
        kombu.unregister_plugin(recorder)


#: What :func:`message_cycle` does, as counts of each event (no connection events).
CYCLE_COUNTS = {
    "kombu_before_publish": 3,
    "kombu_after_publish": 3,
    "kombu_consumer_started": 1,
    "kombu_message_delivered": 4,
    "kombu_message_handled": 4,
    "kombu_message_acked": 2,
    "kombu_message_requeued": 1,
    "kombu_message_rejected": 1,
    "kombu_consumer_cancelled": 1,
}


def publish_numbered(conn: Any, exchange: Any, queue: Any, numbers: range) -> None:
    """Publish ``{"n": i}`` for each number, with ``retry=True`` and an application header."""
    producer = kombu.Producer(conn, exchange=exchange, routing_key=queue.routing_key)
    for i in numbers:
        producer.publish({"n": i}, declare=[queue], retry=True, headers={"app": "tests"},
                         retry_policy={"max_retries": 3, "interval_start": 0,
                                       "interval_step": 0.1, "timeout": 20})


def consume_numbered(conn: Any, queue: Any, timeout: float = 15.0) -> list[tuple[int, bool]]:
    """Consume the three messages of :func:`publish_numbered`: ack 0, requeue 1 once
    (then ack it), reject 2.  Returns ``(n, requeued before)`` per delivery."""
    import socket
    import time

    seen: list[tuple[int, bool]] = []
    requeued: set[int] = set()

    def on_message(body: Any, message: Any) -> None:
        n = body["n"]
        seen.append((n, n in requeued))
        if n == 1 and n not in requeued:
            requeued.add(n)
            message.requeue()
        elif n == 2:
            message.reject()
        else:
            message.ack()

    deadline = time.monotonic() + timeout
    with kombu.Consumer(conn, [queue], callbacks=[on_message], accept=["json"]):
        while len(seen) < 4:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {seen} within {timeout}s, expected 4 deliveries")
            try:
                conn.drain_events(timeout=1)
            except socket.timeout:
                pass
    return seen


def message_cycle(conn: Any, exchange: Any, queue: Any) -> list[tuple[int, bool]]:
    """Publish three messages and consume them (see :data:`CYCLE_COUNTS`)."""
    publish_numbered(conn, exchange, queue, range(3))
    return consume_numbered(conn, queue)
