"""Interop with real kombu 5.x on the same RabbitMQ, in both directions.

Real kombu runs in a separate environment as a subprocess: the interpreter
named by ``KOMBU5_PYTHON``, else ``.venv-kombu`` at the repository root.
Two messages, one published without headers or properties and one with
both, are published by both sides and read by both sides; for each, the
bodies and the full property dicts (``application_headers`` included, an
empty table when no headers were given) must be identical.
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

BODY = {"text": "héllo", "n": 42, "list": [1, 2.5, None, True]}

#: Messages by variant: the body and the keyword arguments of ``publish``.
MESSAGES: dict[str, dict[str, Any]] = {
    "plain": {"body": BODY, "kwargs": {}},
    "full": {"body": BODY, "kwargs": {
        "headers": {"task": "add", "retries": 3, "nested": {"k": "v"}, "flag": False},
        "correlation_id": "corr-7", "reply_to": "replies", "priority": 4,
        "app_id": "interop", "message_id": "mid-1", "type": "job", "expiration": 60}},
}

#: The properties kombu 5.x sends for a message published without any.
PLAIN_PROPERTIES = {"content_type": "application/json", "content_encoding": "utf-8",
                    "application_headers": {}, "delivery_mode": 2, "priority": 0}

SCRIPT = r"""
import json, sys, time
from kombu import Connection, Queue

mode, url, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with Connection(url) as conn:
    if mode == "publish":
        for name, variant in spec["queues"]:
            message = spec["messages"][variant]
            queue = Queue(name, auto_delete=False, durable=False, max_priority=10)
            conn.Producer().publish(message["body"], routing_key=name, declare=[queue],
                                    **message["kwargs"])
        print(json.dumps({"ok": True}))
    else:
        out = []
        for name, _variant in spec["queues"]:
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

Queues = dict[str, str]  # variant -> queue name


def _run_kombu5(mode: str, url: str, *queues: Queues) -> Any:
    """Publish to or consume from ``queues`` (in order) with kombu 5.x."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pairs = [[name, variant] for each in queues for variant, name in each.items()]
    spec = {"queues": pairs, "messages": MESSAGES}
    proc = subprocess.run(
        [kombu5_python(), "-c", SCRIPT, mode, url, json.dumps(spec)],
        capture_output=True, text=True, timeout=60, env=env, cwd=str(ROOT.parent))
    assert proc.returncode == 0, f"kombu 5.x script failed: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _queues(names: Callable[[str], str], who: str) -> Queues:
    return {variant: names(f"{who}-{variant}") for variant in MESSAGES}


def _publish_ours(conn: Any, queues: Queues) -> None:
    for variant, name in queues.items():
        message = MESSAGES[variant]
        queue = Queue(name, auto_delete=False, durable=False, max_priority=10)
        conn.Producer().publish(message["body"], routing_key=name, declare=[queue],
                                **message["kwargs"])


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


def _check_variant(variant: str, record: dict[str, Any]) -> None:
    """``record`` is the message of ``variant`` with the properties kombu 5.x sends."""
    kwargs = MESSAGES[variant]["kwargs"]
    headers = kwargs.get("headers", {})
    properties = record["properties"]
    assert record["payload"] == MESSAGES[variant]["body"]
    assert record["headers"] == headers
    assert properties["application_headers"] == headers  # {} too: an empty table
    if variant == "plain":
        assert properties == PLAIN_PROPERTIES
        return
    expected = {key: value for key, value in kwargs.items()
                if key not in ("headers", "expiration")}
    assert {key: properties[key] for key in expected} == expected
    assert properties["expiration"] == "60000"
    assert set(properties) == {*expected, *PLAIN_PROPERTIES, "expiration"}


def _compare(ours: dict[str, Any], theirs: dict[str, Any], variant: str) -> None:
    for record in (ours, theirs):
        _check_variant(variant, _normal(record))
    assert _normal(ours) == _normal(theirs), variant


def test_kombu5_publishes_we_consume(amqp_url: str, names: Callable[[str], str],
                                     connect: Callable[..., Any]) -> None:
    theirs, ours = _queues(names, "from-kombu5"), _queues(names, "from-us")
    _run_kombu5("publish", amqp_url, theirs)
    conn = connect()
    _publish_ours(conn, ours)
    for variant in MESSAGES:
        _compare(_get_ours(conn, ours[variant]), _get_ours(conn, theirs[variant]), variant)


def test_we_publish_kombu5_consumes(amqp_url: str, names: Callable[[str], str],
                                    connect: Callable[..., Any]) -> None:
    theirs, ours = _queues(names, "from-kombu5"), _queues(names, "from-us")
    conn = connect()
    _publish_ours(conn, ours)
    _run_kombu5("publish", amqp_url, theirs)
    seen = _run_kombu5("consume", amqp_url, ours, theirs)
    assert None not in seen, seen
    by_queue = dict(zip([*ours.values(), *theirs.values()], seen))
    for variant in MESSAGES:
        _compare(by_queue[ours[variant]], by_queue[theirs[variant]], variant)
