"""No message is lost when consumers are killed at random points (SIGKILL)."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from kombu import Consumer, Producer, Queue

pytestmark = pytest.mark.redis

CONSUMER = textwrap.dedent("""
    import socket, sys, time
    from kombu import Connection, Consumer, Queue
    url, prefix, name = sys.argv[1:4]
    conn = Connection(url, transport_options={
        "global_keyprefix": prefix, "visibility_timeout": 1, "unacked_restore_interval": 0.2})
    def on_message(body, message):
        print(f"{body} {bool(message.delivery_info.get('redelivered'))}", flush=True)
        time.sleep(0.002)  # slower than the publisher: every kill finds a backlog
        message.ack()
    with Consumer(conn, [Queue(name)], callbacks=[on_message], prefetch_count=20):
        while True:
            try:
                conn.drain_events(timeout=1)
            except socket.timeout:
                pass
""")

N = 1500


def _reader(proc: subprocess.Popen, seen: list[tuple[int, bool]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        fields = line.split()
        if len(fields) == 2 and line.endswith("\n"):  # not cut short by the kill
            seen.append((int(fields[0]), fields[1] == "True"))


@pytest.mark.timeout(120)
def test_killed_consumers_lose_nothing(connect: Any, names: Any, redis_url: str,
                                       raw: Any, drain: Any, quiet: Any) -> None:
    conn = connect(visibility_timeout=1, unacked_restore_interval=0.2)
    queue = Queue(names("q"))
    producer = Producer(conn)
    seen: list[tuple[int, bool]] = []
    rng = random.Random(os.getpid())

    def publish() -> None:
        for i in range(N):
            producer.publish(i, routing_key=queue.name, declare=[queue] if i == 0 else [])
            if i % 100 == 0:
                time.sleep(0.01)

    publisher = threading.Thread(target=publish)
    publisher.start()
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", CONSUMER, redis_url, connect.prefix,
                                 queue.name], stdout=subprocess.PIPE, text=True)
        reader = threading.Thread(target=_reader, args=(proc, seen))
        reader.start()
        time.sleep(rng.uniform(0.5, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
        kills += 1
    publisher.join(60)
    assert kills == 5 and not publisher.is_alive()

    def on_message(body: Any, message: Any) -> None:
        seen.append((body, bool(message.delivery_info.get("redelivered"))))
        message.ack()

    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[on_message, lambda b, m: got.append(b)],
                  prefetch_count=50):
        deadline = time.monotonic() + 60
        while {b for b, _ in seen} != set(range(N)) and time.monotonic() < deadline:
            drain(conn, got, len(got) + 1, timeout=max(deadline - time.monotonic(), 0.1))
        while not quiet(conn, 1.5):  # redeliveries of what the last consumer held
            assert time.monotonic() < deadline, "messages keep coming back"
    counts = collections.Counter(b for b, _ in seen)
    assert set(counts) == set(range(N)), f"lost: {sorted(set(range(N)) - set(counts))[:20]}"
    first: set[int] = set()
    for body, redelivered in seen:
        if body in first:
            assert redelivered, f"message {body} was delivered twice without the redelivered flag"
        first.add(body)
    # The kills did hit consumers that held messages, and those came back.
    assert any(redelivered for _, redelivered in seen)
    assert raw.hlen(connect.prefix + "unacked") == 0
    assert raw.zcard(connect.prefix + "unacked_index") == 0
