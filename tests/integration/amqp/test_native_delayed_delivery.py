"""Native delayed delivery on a real RabbitMQ, compared with real kombu 5.x.

Each test module works in virtual hosts of its own (``celerymods-ndd-*``),
deleted afterwards, since the delay levels use fixed names.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import require
from helpers.kombu5 import kombu5_python
from helpers.processes import run

pytest.importorskip("amqp", reason="kombu-pyamqp needs the amqp library (pip install amqp)")


def _ctl(*args: str) -> str:
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        pytest.skip("rabbitmqctl is not installed (needed to create a virtual host)")
    proc = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        if "eacces" in proc.stderr.lower() or "cookie" in proc.stderr.lower():
            pytest.skip(f"rabbitmqctl may not talk to the broker: {proc.stderr.strip()[-300:]}")
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


@pytest.fixture(scope="module")
def vhosts() -> Iterator[Any]:
    """``vhosts(tag)``: a virtual host of this module (guest may use it), deleted afterwards."""
    require("rabbitmq")
    made: list[str] = []

    def make(tag: str) -> str:
        name = f"celerymods-ndd-{tag}-{uuid.uuid4().hex[:8]}"
        _ctl("add_vhost", name)
        made.append(name)
        _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return name

    yield make
    for name in made:
        _ctl("delete_vhost", name)


def _url(vhost: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


KOMBU5_SETUP = r"""
import sys
from kombu import Connection, Exchange, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues)
url, queue_type = sys.argv[1:3]
with Connection(url) as conn:
    declare_native_delayed_delivery_exchanges_and_queues(conn, queue_type)
    declare_native_delayed_delivery_exchanges_and_queues(conn, "classic", prefix="pre")
    dest = Queue("dest", Exchange("dest-x", type="topic"), routing_key="task.key")
    dest.declare(channel=conn.default_channel)
    bind_queue_to_native_delayed_delivery_exchange(conn, dest)
print("OK")
"""


def _setup_ours(url: str, queue_type: str) -> None:
    from kombu import Connection, Exchange, Queue
    from kombu.transport.native_delayed_delivery import (
        bind_queue_to_native_delayed_delivery_exchange,
        declare_native_delayed_delivery_exchanges_and_queues,
    )

    with Connection(url) as conn:
        declare_native_delayed_delivery_exchanges_and_queues(conn, queue_type)
        declare_native_delayed_delivery_exchanges_and_queues(conn, "classic", prefix="pre")
        dest = Queue("dest", Exchange("dest-x", type="topic"), routing_key="task.key")
        dest.declare(channel=conn.default_channel)
        bind_queue_to_native_delayed_delivery_exchange(conn, dest)


def _topology(vhost: str) -> dict[str, Any]:
    def rows(*args: str) -> list[Any]:
        out = _ctl(*args, "-p", vhost, "--formatter", "json", "--quiet")
        return sorted(json.dumps(row, sort_keys=True) for row in json.loads(out))

    return {
        "queues": rows("list_queues", "name", "durable", "auto_delete", "arguments"),
        "exchanges": rows("list_exchanges", "name", "type", "durable", "auto_delete",
                          "arguments"),
        "bindings": rows("list_bindings", "source_name", "source_kind", "destination_name",
                         "destination_kind", "routing_key", "arguments"),
    }


def test_same_topology_as_kombu5(vhosts: Any) -> None:
    ours, theirs = vhosts("ours"), vhosts("k5")
    _setup_ours(_url(ours), "quorum")
    run([kombu5_python(), "-c", KOMBU5_SETUP, _url(theirs), "quorum"], timeout=60)
    mine, kombu5 = _topology(ours), _topology(theirs)
    assert len(mine["queues"]) == 28 * 2 + 1
    assert mine == kombu5
    # kombu 5.x declaring over ours is accepted as-is (no 406 PRECONDITION_FAILED)
    run([kombu5_python(), "-c", KOMBU5_SETUP, _url(ours), "quorum"], timeout=60)
    # ... and ours over ours (idempotent)
    _setup_ours(_url(ours), "quorum")
    assert _topology(ours) == mine


@pytest.fixture(scope="module")
def delayed(vhosts: Any) -> str:
    """A virtual host with quorum delay levels, classic ones under ``pre_`` and ``dest``."""
    vhost = vhosts("run")
    _setup_ours(_url(vhost), "quorum")
    return vhost


def _drain_bodies(conn: Any, queue: Any, n: int, timeout: float) -> list[Any]:
    from kombu import Consumer

    got: list[Any] = []
    deadline = time.monotonic() + timeout
    with Consumer(conn.channel(), [queue], accept=["json"],
                  callbacks=[lambda body, m: (got.append(body), m.ack())]):
        while len(got) < n and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=0.5)
            except socket.timeout:
                pass
    return got


def test_short_delays_arrive(delayed: str) -> None:
    from kombu import Connection, Exchange, Producer, Queue
    from kombu.transport.native_delayed_delivery import calculate_routing_key

    dest = Queue("dest", Exchange("dest-x", type="topic"), routing_key="task.key")
    with Connection(_url(delayed)) as conn:
        producer = Producer(conn.channel())
        for delay in (1, 2, 3):
            producer.publish({"delay": delay}, exchange=Exchange("celery_delayed_27", "topic"),
                             routing_key=calculate_routing_key(delay, "task.key"),
                             serializer="json")
        got = _drain_bodies(conn, dest, 3, timeout=30)
    assert sorted(b["delay"] for b in got) == [1, 2, 3]


def test_classic_levels_with_a_prefix(delayed: str) -> None:
    from kombu import Connection, Exchange, Producer, Queue
    from kombu.transport.native_delayed_delivery import (
        bind_queue_to_native_delayed_delivery_exchange,
        calculate_routing_key,
    )

    dest = Queue("pre-dest", Exchange("pre-dest-x", type="topic"), routing_key="job.#")
    with Connection(_url(delayed)) as conn:
        dest.declare(channel=conn.default_channel)
        bind_queue_to_native_delayed_delivery_exchange(conn, dest, prefix="pre")
        Producer(conn.channel()).publish(
            {"ok": 1}, exchange=Exchange("pre_celery_delayed_27", "topic"),
            routing_key=calculate_routing_key(2, "job.run"), serializer="json")
        assert _drain_bodies(conn, dest, 1, timeout=30) == [{"ok": 1}]


def test_a_long_delay_waits_in_its_level(delayed: str) -> None:
    from kombu import Connection, Exchange, Producer, Queue
    from kombu.transport.native_delayed_delivery import calculate_routing_key

    with Connection(_url(delayed)) as conn:
        Producer(conn.channel()).publish(
            {"later": True}, exchange=Exchange("celery_delayed_27", "topic"),
            routing_key=calculate_routing_key(2 ** 20, "task.key"), serializer="json")
        level = Queue("celery_delayed_20")(conn.channel())

        def count() -> int:
            return int(level.queue_declare(passive=True).message_count)

        deadline = time.monotonic() + 10
        while count() != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count() == 1
        assert Queue("dest")(conn.channel()).queue_declare(passive=True).message_count == 0
        level.purge()


def test_direct_exchanges_are_skipped_with_a_warning(
        delayed: str, caplog: pytest.LogCaptureFixture) -> None:
    from kombu import Connection, Exchange, Queue
    from kombu.transport.native_delayed_delivery import (
        bind_queue_to_native_delayed_delivery_exchange,
    )

    queue = Queue("direct-dest", Exchange("direct-x", type="direct"), routing_key="k")
    with Connection(_url(delayed)) as conn:
        queue.declare(channel=conn.default_channel)
        with caplog.at_level(logging.WARNING, logger="kombu.transport.native_delayed_delivery"):
            bind_queue_to_native_delayed_delivery_exchange(conn, queue)
    assert "direct-x is a direct exchange" in caplog.text
    bindings = _topology(delayed)["bindings"]
    assert not any('"#.k"' in row for row in bindings)
