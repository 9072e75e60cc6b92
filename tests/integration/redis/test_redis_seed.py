"""The specification's usage examples, verbatim, against redis://localhost:6379/0.

The examples use fixed names in database 0 (``test``, ``test_queue``); the
``db0`` fixture refuses to run over keys it did not create and deletes the
keys the examples created.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kombu import pools

pytestmark = pytest.mark.redis

redis = pytest.importorskip("redis", reason="kombu-redis needs redis-py (pip install redis)")

SEED_URL = "redis://localhost:6379/0"
SEED_KEYS = ("test", "test_queue")


@pytest.fixture
def db0(redis_url: str) -> Iterator[Any]:
    """A client on database 0; keys the test creates there are deleted afterwards."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    busy = [key for key in SEED_KEYS if client.exists(key)]
    if busy:
        client.close()
        pytest.fail(f"database 0 already holds {busy}: these tests would mix their "
                    f"messages with someone else's; delete the keys or use another Redis")
    before = set(client.scan_iter(count=1000))
    previous_limit = pools.get_limit()
    yield client
    pools.reset()
    pools.set_limit(previous_limit)
    created = set(client.scan_iter(count=1000)) - before
    if created:
        client.delete(*created)
    client.close()


def _payloads(client: Any, key: str) -> list[Any]:
    """The JSON bodies of the messages in list ``key``, oldest first."""
    import base64
    import json

    bodies = []
    for raw in reversed(client.lrange(key, 0, -1)):  # LPUSH puts the newest first
        envelope = json.loads(raw)
        assert envelope["properties"]["body_encoding"] == "base64"
        bodies.append(json.loads(base64.b64decode(envelope["body"])))
    return bodies


def test_basic_connection(db0: Any) -> None:
    from kombu import Connection

    # Connect with URL
    conn = Connection('redis://localhost:6379/0')

    with conn:
        # Use connection
        channel = conn.channel()
        # ... perform operations
        assert conn.connected and channel is not None
        assert conn.transport.driver_name == "redis"
        channel.close()
    assert not conn.connected


def test_connection_with_retry_logic(db0: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from kombu import Connection

    conn = Connection('redis://localhost:6379/0')

    def on_connection_error(exc, interval):  # type: ignore[no-untyped-def]
        print(f"Connection error: {exc}, retrying in {interval}s")

    # Ensure connection with custom retry policy
    with conn.ensure_connection(
        errback=on_connection_error,
        max_retries=5,
        interval_start=1,
        interval_step=2,
        interval_max=10
    ):
        # Connection guaranteed to be established
        channel = conn.channel()
        assert conn.connected and channel is not None
        channel.close()
    assert "Connection error" not in capsys.readouterr().out
    assert not conn.connected


def test_connection_pooling(db0: Any) -> None:
    # Use global connection pool
    with pools.connections['redis://localhost:6379/0'].acquire() as conn:
        producer = conn.Producer()
        producer.publish({'msg': 'hello'}, routing_key='test')

    # Use global producer pool
    with pools.producers['redis://localhost:6379/0'].acquire() as producer:
        producer.publish({'msg': 'hello'}, routing_key='test')

    # Set pool limits
    pools.set_limit(100)  # Allow up to 100 connections per pool

    assert pools.get_limit() == 100
    # Both went to the queue named by the routing key, in kombu's envelope.
    assert _payloads(db0, "test") == [{"msg": "hello"}, {"msg": "hello"}]
    # One pool per URL: the connection of the producer pool came from it.
    assert pools.connections['redis://localhost:6379/0'] is pools.connections[SEED_URL]


def test_url_parsing(capsys: pytest.CaptureFixture[str]) -> None:
    from kombu.utils.url import parse_url

    # Parse Redis URL
    parsed = parse_url('redis://user:pass@localhost:6379/1')
    print(parsed)
    # {'transport': 'redis', 'hostname': 'localhost', 'port': 6379,
    # 'userid': 'user', 'password': 'pass', 'virtual_host': '1'}

    assert parsed == {'transport': 'redis', 'hostname': 'localhost', 'port': 6379,
                      'userid': 'user', 'password': 'pass', 'virtual_host': '1'}
    assert "'virtual_host': '1'" in capsys.readouterr().out


def test_event_processing(db0: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from kombu import Connection, Queue, Consumer  # noqa: F401, I001  (verbatim)
    from kombu.common import eventloop

    with Connection(SEED_URL) as setup:
        producer = setup.Producer()
        for i in range(10):
            producer.publish({"n": i}, routing_key="test_queue",
                             declare=[Queue("test_queue")])

    def process_message(body, message):  # type: ignore[no-untyped-def]
        print(f"Processing: {body}")
        message.ack()

    conn = Connection('redis://localhost:6379/0')
    queue = Queue('test_queue')

    with conn:
        consumer = conn.Consumer(queue, callbacks=[process_message])
        consumer.consume()

        # Process events with timeout
        for _ in eventloop(conn, limit=10, timeout=5.0):
            pass  # Events processed via callbacks

    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Processing: {{'n': {i}}}" for i in range(10)]
    assert db0.llen("test_queue") == 0
    assert db0.hlen("unacked") == 0, "every message was acknowledged"
