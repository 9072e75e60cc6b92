"""The global pools survive a real Redis restart and leak no socket.

An extra redis-server on its own loopback port is stopped while the pools
hold idle connections and started again on the same port.  The pooled
connections then reconnect (``Producer.publish(retry=True)`` and
``ensure_connection``), every message published is in the queue once, and
no socket to the old server stays open.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.processes import in_forked_child
from helpers.sockets import baseline_sockets, established_to, open_sockets
from kombu import Connection, Queue, pools

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not os.path.exists("/proc/self/net/tcp"),
                       reason="counting sockets reads /proc (Linux only)"),
]

LIMIT = 4
RETRY = {"max_retries": 50, "interval_start": 0.1, "interval_step": 0.1, "interval_max": 0.3}


@pytest.fixture
def global_pools() -> Iterator[None]:
    previous = pools.get_limit()
    pools.reset()
    pools.set_limit(LIMIT)
    yield
    pools.reset()
    pools.set_limit(previous)


def _hold_all(url: str) -> list[Any]:
    """Acquire every producer of the pool at once (so every connection is used)."""
    return [pools.producers[Connection(url)].acquire(block=True, timeout=5)
            for _ in range(LIMIT)]


@pytest.mark.timeout(120)
def test_pools_recover_after_a_redis_restart(redis_server: Callable[..., Any],
                                             global_pools: None,
                                             names: Callable[[str], str]) -> None:
    server = redis_server()
    url = f"redis://127.0.0.1:{server.port}/0"
    queue = Queue(names("q"))
    fds_before = baseline_sockets()

    held = _hold_all(url)
    for i, producer in enumerate(held):
        producer.publish({"before": i}, routing_key=queue.name, declare=[queue])
    for producer in held:
        producer.release()
    connected = established_to(server.port)
    assert connected >= LIMIT, connected  # one client per pooled connection, at least

    server.stop()
    assert established_to(server.port) == 0  # the server closed them all
    server = redis_server(port=server.port)

    # Every pooled connection finds its socket dead and reconnects.
    held = _hold_all(url)
    errors: list[BaseException] = []

    def publish(producer: Any, i: int) -> None:
        try:
            producer.publish({"after": i}, routing_key=queue.name, declare=[queue],
                             retry=True, retry_policy=RETRY)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(p, i)) for i, p in enumerate(held)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a publish hung"
    assert not errors, errors
    for producer in held:
        producer.release()
    # No more clients than before the restart: the dead ones were freed.
    assert established_to(server.port) <= connected

    # The new server started empty: exactly the messages published after it.
    with Connection(url) as conn:
        consumer_queue = queue(conn.default_channel)
        bodies = []
        for _ in range(2 * LIMIT):
            message = consumer_queue.get(no_ack=True)
            if message is None:
                break
            bodies.append(message.payload)
    assert sorted(b["after"] for b in bodies) == list(range(LIMIT))

    pools.reset()
    assert established_to(server.port) == 0
    assert open_sockets() == fds_before


def _client_id(connection: Connection) -> int:
    """The Redis CLIENT ID of the channel's own socket."""
    return int(connection.default_channel.link.call("CLIENT", "ID"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.timeout(60)
def test_a_forked_child_never_uses_the_parents_sockets(redis_url: str,
                                                        global_pools: None) -> None:
    pool = pools.connections[Connection(redis_url)]
    with pool.acquire(block=True, timeout=5) as conn:
        parent_id = _client_id(conn)

    def check() -> None:
        child_pool = pools.connections[Connection(redis_url)]
        assert child_pool is not pool  # the group forgot the parent's pools
        with child_pool.acquire(block=True, timeout=5) as child_conn:
            assert _client_id(child_conn) != parent_id, "the child used the parent's socket"

    in_forked_child(check, timeout=30)
    # The child neither used nor closed the parent's connection.
    with pool.acquire(block=True, timeout=5) as conn:
        assert _client_id(conn) == parent_id
