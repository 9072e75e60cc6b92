"""kombu-redis asks the channel's QoS instance before fetching (Celery's worker_disable_prefetch).

Celery replaces ``can_consume`` on the task channel's QoS *instance* so that
a worker reserves no more tasks than it has processes; the transport must
call that method, not only the class's prefetch arithmetic.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from types import MethodType
from typing import Any

import pytest
from helpers import require

redis = pytest.importorskip("redis", reason="kombu-redis needs redis-py (pip install redis)")

URL = "redis://127.0.0.1:6379/4"


@pytest.fixture
def raw() -> Iterator[Any]:
    require("redis")
    client = redis.Redis.from_url(URL)
    yield client
    client.close()


@pytest.fixture
def qname(raw: Any) -> Iterator[str]:
    name = f"celerymods-cc-{uuid.uuid4().hex[:10]}"
    yield name
    for key in raw.scan_iter(match=f"*{name}*", count=1000):
        raw.delete(key)


def _drain_for(conn: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=0.2)
        except socket.timeout:
            pass


def test_instance_can_consume_caps_deliveries(raw: Any, qname: str) -> None:
    from kombu import Connection, Consumer, Producer, Queue

    queue = Queue(qname, routing_key=qname)
    with Connection(URL) as conn:
        channel = conn.channel()
        producer = Producer(channel)
        for i in range(6):
            producer.publish({"n": i}, routing_key=qname, declare=[queue])
        got: list[Any] = []
        allowed = {"n": 2}
        qos = channel.qos
        original = qos.can_consume

        def can_consume(self: Any) -> bool:
            return len(got) < allowed["n"] and bool(original())

        qos.can_consume = MethodType(can_consume, qos)
        consumer = Consumer(channel, [queue], callbacks=[lambda body, m: got.append(m)])
        consumer.qos(prefetch_count=10)  # the prefetch window alone would allow all six
        with consumer:
            _drain_for(conn, 1.5)
            assert [m.payload["n"] for m in got] == [0, 1]
            # nothing was fetched ahead: the other four are still in Redis
            assert raw.llen(qname) == 4
            allowed["n"] = 5
            _drain_for(conn, 1.5)
            assert [m.payload["n"] for m in got] == [0, 1, 2, 3, 4]
            assert raw.llen(qname) == 1
            for message in got:
                message.ack()


def test_without_override_the_window_is_used(raw: Any, qname: str) -> None:
    """The same flow without the override: prefetch_count=3 stops at three."""
    from kombu import Connection, Consumer, Producer, Queue

    queue = Queue(qname, routing_key=qname)
    with Connection(URL) as conn:
        channel = conn.channel()
        producer = Producer(channel)
        for i in range(6):
            producer.publish({"n": i}, routing_key=qname, declare=[queue])
        got: list[Any] = []
        consumer = Consumer(channel, [queue], callbacks=[lambda body, m: got.append(m)])
        consumer.qos(prefetch_count=3)
        with consumer:
            _drain_for(conn, 1.5)
            assert len(got) == 3
            assert raw.llen(qname) == 3
            for message in got:
                message.ack()
