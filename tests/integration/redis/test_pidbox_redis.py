"""kombu.pidbox over a real Redis, between this project's nodes and with real kombu 5.x."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import require
from helpers.kombu5 import kombu5_python
from helpers.pidbox import check_kombu5_client, check_kombu5_node, check_round_trip

redis = pytest.importorskip("redis", reason="kombu-redis needs redis-py (pip install redis)")

URL = "redis://127.0.0.1:6379/5"


@pytest.fixture
def namespace() -> Iterator[str]:
    """A mailbox namespace of the test's own; its keys are deleted afterwards."""
    require("redis")
    name = f"celerymods-pbx-{uuid.uuid4().hex[:10]}"
    yield name
    client: Any = redis.Redis.from_url(URL)
    try:
        for key in client.scan_iter(match=f"*{name}*", count=1000):
            client.delete(key)
        # expiring reply queues leave their exchange in the shared deadline index
        deadlines = "_kombu.binding_deadlines"
        for member in client.zrange(deadlines, 0, -1):
            if name.encode() in member:
                client.zrem(deadlines, member)
    finally:
        client.close()


def test_round_trip(namespace: str) -> None:
    check_round_trip(URL, namespace)


def test_reply_queue_is_removed_after_collecting(namespace: str) -> None:
    from helpers.pidbox import NodeThread
    from kombu import Connection
    from kombu.pidbox import Mailbox

    mailbox = Mailbox(namespace, type="fanout")
    client: Any = redis.Redis.from_url(URL)
    try:
        with NodeThread(URL, mailbox, "n@h", {"ping": lambda state: "pong"}), \
                Connection(URL) as conn:
            bound = mailbox(conn)
            assert bound.call(["n@h"], "ping", timeout=10) == [{"n@h": "pong"}]
            reply_queue = bound.reply_queue.name
            assert reply_queue.endswith(f".reply.{namespace}.pidbox")
            assert client.exists(reply_queue) == 0
            members = client.smembers(f"_kombu.binding.reply.{namespace}.pidbox")
            assert not any(reply_queue.encode() in m for m in members)
    finally:
        client.close()


def test_kombu5_node_answers_our_mailbox(namespace: str) -> None:
    check_kombu5_node(kombu5_python(), URL, namespace)


def test_our_node_answers_a_kombu5_mailbox(namespace: str) -> None:
    check_kombu5_client(kombu5_python(), URL, namespace)
