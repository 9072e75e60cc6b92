"""A third-party transport, installed as its own distribution, just works.

kombu-dictq (tests/thirdparty/kombu-dictq) is installed into the test
environment as a regular, non-editable distribution by ``./dev setup``: it
is found through its ``kombu.transports`` entry point, exactly as a
transport published on PyPI would be.
"""

from __future__ import annotations

import json
import socket
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers import run_python
from kombu import Connection, Consumer, Exchange, Producer, Queue

TESTS = Path(__file__).resolve().parents[1]
SETUP_HINT = "install it with ./dev setup (pip install tests/thirdparty/kombu-dictq)"

try:
    import kombu_dictq
    from kombu_dictq.transport import Transport as DictqTransport
except ImportError as exc:  # collected without ./dev setup
    raise ImportError(f"kombu-dictq is not installed: {SETUP_HINT}") from exc


def test_installed_from_site_packages_not_the_source_tree() -> None:
    location = Path(kombu_dictq.__file__).resolve()
    assert "site-packages" in location.parts, f"kombu_dictq imported from {location}"
    assert TESTS not in location.parents, f"kombu_dictq imported from the source tree: {SETUP_HINT}"
    dist = metadata.distribution("kombu-dictq")
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    assert not direct_url.get("dir_info", {}).get("editable"), f"installed editable; {SETUP_HINT}"


def test_entry_point_comes_from_installed_metadata() -> None:
    found = {ep.name: ep.value for ep in metadata.entry_points(group="kombu.transports")
             if ep.dist is not None and ep.dist.metadata["Name"] == "kombu-dictq"}
    assert found == {"dictq": "kombu_dictq.plugin"}


@pytest.mark.parametrize("how", [
    pytest.param({"transport": "dictq"}, id="transport=dictq"),
    pytest.param({"hostname": "dictq://"}, id="dictq://"),
    pytest.param({"hostname": "dq://"}, id="dq:// alias"),
])
def test_connection_resolves_the_plugins_transport(how: dict[str, str]) -> None:
    with Connection(**how) as conn:
        assert type(conn.transport) is DictqTransport
        conn.connect()
        assert conn.connected


def test_fresh_interpreter_resolves_alias_through_entry_points() -> None:
    code = ("from kombu import Connection\n"
            "conn = Connection('dq://')\n"
            "print(type(conn.transport).__module__)\n"
            "conn.release()\n")
    assert run_python(code).stdout.strip() == "kombu_dictq.transport"


def _consume(conn: Connection, queue: Queue, n: int, timeout: float = 10.0) -> list[Any]:
    got: list[Any] = []

    def on_message(body: Any, message: Any) -> None:
        got.append(body)
        message.ack()

    deadline = time.monotonic() + timeout
    with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10):
        while len(got) < n and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
            except socket.timeout:
                pass
    return got


def test_publish_and_consume_between_connections(unique: Callable[..., str]) -> None:
    exchange = Exchange(unique("x"), "direct")
    queue = Queue(unique("q"), exchange, routing_key="jobs")
    bodies = [{"n": i} for i in range(5)]
    with Connection("dictq://") as publisher, Connection("dictq://") as consumer:
        producer = Producer(publisher, exchange=exchange, routing_key="jobs")
        for body in bodies:
            producer.publish(body, declare=[queue])
        assert _consume(consumer, queue, len(bodies)) == bodies
        assert queue(consumer.default_channel).queue_declare(passive=True).message_count == 0


def test_simple_queue_round_trip(unique: Callable[..., str]) -> None:
    with Connection(transport="dictq") as conn:
        queue = conn.SimpleQueue(unique("simple"))
        queue.put({"hello": "world"})
        assert queue.qsize() == 1
        message = queue.get(timeout=5)
        assert message.payload == {"hello": "world"}
        message.ack()
        assert queue.qsize() == 0
        queue.close()
