"""Interop with real kombu 5.x on the same RabbitMQ, in both directions.

Real kombu runs in a separate environment as a subprocess: the interpreter
named by ``KOMBU5_PYTHON``, else ``.venv-kombu`` at the repository root.
The same message is published by both sides and read by both sides; the
bodies, properties and headers must be identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers.kombu5 import kombu5_python
from kombu import Queue

pytestmark = pytest.mark.rabbitmq

ROOT = Path(__file__).resolve().parents[3]

MESSAGE = {
    "body": {"text": "héllo", "n": 42, "list": [1, 2.5, None, True]},
    "headers": {"task": "add", "retries": 3, "nested": {"k": "v"}, "flag": False},
    "properties": {"correlation_id": "corr-7", "reply_to": "replies", "priority": 4,
                   "app_id": "interop", "message_id": "mid-1", "type": "job"},
    "expiration": 60,
}

SCRIPT = r"""
import json, sys, time
from kombu import Connection, Queue

mode, url, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with Connection(url) as conn:
    if mode == "publish":
        for name in spec["queues"]:
            queue = Queue(name, auto_delete=False, durable=False, max_priority=10)
            conn.Producer().publish(spec["message"]["body"], routing_key=name,
                                    declare=[queue], headers=spec["message"]["headers"],
                                    expiration=spec["message"]["expiration"],
                                    **spec["message"]["properties"])
        print(json.dumps({"ok": True}))
    else:
        out = []
        for name in spec["queues"]:
            queue = Queue(name, auto_delete=False, durable=False, max_priority=10)
            bound = queue(conn.default_channel)
            deadline = time.monotonic() + 10
            message = None
            while message is None and time.monotonic() < deadline:
                message = bound.get(no_ack=True)
                if message is None:
                    time.sleep(0.05)
            out.append(None if message is None else {
                "payload": message.payload, "body": message.body,
                "body_type": type(message.body).__name__, "content_type": message.content_type,
                "content_encoding": message.content_encoding,
                "headers": message.headers, "properties": message.properties,
                "routing_key": message.delivery_info["routing_key"],
            })
        print(json.dumps(out, default=str))
"""


def _run_kombu5(mode: str, url: str, queues: list[str]) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [kombu5_python(), "-c", SCRIPT, mode, url,
         json.dumps({"queues": queues, "message": MESSAGE})],
        capture_output=True, text=True, timeout=60, env=env, cwd=str(ROOT.parent))
    assert proc.returncode == 0, f"kombu 5.x script failed: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _publish_ours(conn: Any, name: str) -> None:
    queue = Queue(name, auto_delete=False, durable=False, max_priority=10)
    conn.Producer().publish(MESSAGE["body"], routing_key=name, declare=[queue],
                            headers=MESSAGE["headers"], expiration=MESSAGE["expiration"],
                            **MESSAGE["properties"])


def _get_ours(conn: Any, name: str) -> dict[str, Any]:
    bound = Queue(name, auto_delete=False, durable=False, max_priority=10)(conn.default_channel)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = bound.get(no_ack=True)
        if message is not None:
            return {"payload": message.payload, "body": message.body,
                    "body_type": type(message.body).__name__, "content_type": message.content_type,
                    "content_encoding": message.content_encoding,
                    "headers": message.headers, "properties": message.properties,
                    "routing_key": message.delivery_info["routing_key"]}
        time.sleep(0.05)
    raise AssertionError(f"no message in {name} within 10s")


def _normal(record: dict[str, Any]) -> dict[str, Any]:
    """Comparable form: JSON round trip, routing key (the queue name) dropped."""
    out = json.loads(json.dumps(record, default=str))
    out.pop("routing_key")
    return out


def test_kombu5_publishes_we_consume(amqp_url: str, names: Callable[[str], str],
                                     connect: Callable[..., Any]) -> None:
    theirs, ours = names("from-kombu5"), names("from-us")
    _run_kombu5("publish", amqp_url, [theirs])
    conn = connect()
    _publish_ours(conn, ours)
    got_theirs, got_ours = _get_ours(conn, theirs), _get_ours(conn, ours)
    assert got_theirs["payload"] == MESSAGE["body"]
    assert got_theirs["headers"] == MESSAGE["headers"]
    for key, value in MESSAGE["properties"].items():
        assert got_theirs["properties"][key] == value
    assert got_theirs["properties"]["expiration"] == "60000"
    assert _normal(got_theirs) == _normal(got_ours)


def test_we_publish_kombu5_consumes(amqp_url: str, names: Callable[[str], str],
                                    connect: Callable[..., Any]) -> None:
    theirs, ours = names("from-kombu5"), names("from-us")
    conn = connect()
    _publish_ours(conn, ours)
    _run_kombu5("publish", amqp_url, [theirs])
    seen_ours, seen_theirs = _run_kombu5("consume", amqp_url, [ours, theirs])
    assert seen_ours is not None and seen_theirs is not None
    assert seen_ours["payload"] == MESSAGE["body"]
    assert seen_ours["headers"] == MESSAGE["headers"]
    assert _normal(seen_ours) == _normal(seen_theirs)
