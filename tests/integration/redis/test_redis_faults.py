"""Connections cut under load (the fault proxy) lose no message."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.faultproxy import FaultProxy
from kombu import Consumer, Producer, Queue

pytestmark = pytest.mark.redis

N = 2000


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", 6379)) as fault_proxy:
        yield fault_proxy


@pytest.mark.timeout(120)
def test_cut_connections_lose_nothing(proxy: FaultProxy, connect: Any, names: Any, raw: Any,
                                      redis_url: str) -> None:
    options = {"visibility_timeout": 1, "unacked_restore_interval": 0.2}
    publisher = connect(**options)
    conn = connect(url=proxy.url("redis", "/" + redis_url.rsplit("/", 1)[1]), **options)
    queue = Queue(names("q"))
    queue(publisher.default_channel).declare()
    producer = Producer(publisher)

    def publish() -> None:
        for i in range(N):
            producer.publish(i, routing_key=queue.name)
            if i % 20 == 0:
                time.sleep(0.005)

    thread = threading.Thread(target=publish)
    thread.start()
    seen: list[tuple[int, bool]] = []

    def on_message(body: Any, message: Any) -> None:
        seen.append((body, bool(message.delivery_info.get("redelivered"))))
        message.ack()

    from kombu_redis.acks import held_tags

    cuts, next_cut = 0, 150
    held_at_cut: list[int] = []  # messages the consumer held (fetched, unacked) at each cut
    deadline = time.monotonic() + 90
    while {b for b, _ in seen} != set(range(N)) or thread.is_alive():
        assert time.monotonic() < deadline, f"{len({b for b, _ in seen})} of {N} received"
        try:
            with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=25):
                while {b for b, _ in seen} != set(range(N)) or thread.is_alive():
                    assert time.monotonic() < deadline
                    if cuts < 6 and len(seen) >= next_cut:
                        held_at_cut.append(len(held_tags(conn.default_channel)))
                        proxy.cut_all()
                        cuts, next_cut = cuts + 1, next_cut + 300
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        pass
        except conn.connection_errors:
            conn.close()  # cannot restore now: the records come back after 1s
            conn.ensure_connection(max_retries=10, interval_start=0.1)
    thread.join(10)
    assert cuts == 6
    conn.close()
    time.sleep(1.5)  # let the last visibility timeout pass, then collect the rest
    with Consumer(publisher, [queue], callbacks=[on_message]):
        while True:
            try:
                publisher.drain_events(timeout=1.5)
            except TimeoutError:
                break
            assert time.monotonic() < deadline
    counts = collections.Counter(b for b, _ in seen)
    assert set(counts) == set(range(N))
    first: set[int] = set()
    for body, redelivered in seen:
        assert body not in first or redelivered, f"{body} delivered twice unflagged"
        first.add(body)
    assert any(held_at_cut), "no cut hit a consumer holding messages"
    assert raw.hlen(connect.prefix + "unacked") == 0


@pytest.mark.timeout(120)
def test_redis_restart_with_persistence_loses_nothing(redis_server: Any, tmp_path: Path,
                                                      names: Any) -> None:
    from kombu import Connection

    persist = ("--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path))
    server = redis_server(*persist)
    url = f"redis://127.0.0.1:{server.port}/0"
    options = {"visibility_timeout": 1, "unacked_restore_interval": 0.2}
    queue = Queue(names("q"))
    n = 600
    seen: list[tuple[int, bool]] = []
    tags: list[str] = []

    def on_message(body: Any, message: Any) -> None:
        seen.append((body, bool(message.delivery_info.get("redelivered"))))
        tags.append(message.delivery_tag)
        message.ack()

    with Connection(url, transport_options=options) as pub, \
            Connection(url, transport_options=options) as conn:
        producer = Producer(pub)
        publish = pub.ensure(producer, producer.publish, max_retries=100, interval_start=0.1,
                             interval_step=0.1, interval_max=0.3)
        publish(-1, routing_key=queue.name, declare=[queue])

        def publish_all() -> None:
            for i in range(n):
                publish(i, routing_key=queue.name)
                time.sleep(0.002)

        thread = threading.Thread(target=publish_all)
        thread.start()
        restarted = False
        deadline = time.monotonic() + 90
        while {b for b, _ in seen} != set(range(-1, n)) or thread.is_alive():
            assert time.monotonic() < deadline, f"{len({b for b, _ in seen})} received"
            try:
                with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10):
                    while {b for b, _ in seen} != set(range(-1, n)) or thread.is_alive():
                        assert time.monotonic() < deadline
                        if not restarted and len(seen) > n // 3:
                            server.stop()
                            server = redis_server(*persist, port=server.port)
                            restarted = True
                        try:
                            conn.drain_events(timeout=0.5)
                        except TimeoutError:
                            pass
            except conn.connection_errors:
                conn.close()
                conn.ensure_connection(max_retries=50, interval_start=0.1, interval_step=0.1)
        thread.join(10)
    assert restarted
    assert {b for b, _ in seen} == set(range(-1, n))
    # A publish retried across the restart may store a second copy (a new
    # message, with its own delivery tag); a message delivered twice must be
    # flagged as redelivered.
    first: set[str] = set()
    for (body, redelivered), tag in zip(seen, tags):
        assert tag not in first or redelivered, f"{body} delivered twice unflagged"
        first.add(tag)


def test_a_silent_server_fails_within_connect_timeout(proxy: FaultProxy, redis_url: str) -> None:
    from kombu import Connection
    from kombu.exceptions import OperationalError

    proxy.blackhole()
    conn = Connection(proxy.url("redis", "/0"), connect_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(OperationalError):
        conn.ensure_connection(max_retries=0)
    assert time.monotonic() - start < 2
    conn.close()
