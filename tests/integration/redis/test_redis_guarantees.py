"""No message is lost when consumers are killed at random points (SIGKILL)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable

import pytest
from kombu import Consumer, Producer, Queue

pytestmark = pytest.mark.redis

OPTIONS = {"visibility_timeout": 1, "unacked_restore_interval": 0.2}

#: Consumes ``name`` slowly; prints "body redelivered tag" once a message is acked.
CONSUMER = textwrap.dedent("""
    import json, socket, sys, time
    from kombu import Connection, Consumer, Queue
    url, prefix, name, options = sys.argv[1:5]
    conn = Connection(url, transport_options=dict(json.loads(options), global_keyprefix=prefix))
    def on_message(body, message):
        time.sleep(0.002)  # slower than the publisher: every kill finds a backlog
        message.ack()
        redelivered = bool(message.delivery_info.get("redelivered"))
        print(f"{body} {redelivered} {message.delivery_tag}", flush=True)
    with Consumer(conn, [Queue(name)], callbacks=[on_message], prefetch_count=20):
        while True:
            try:
                conn.drain_events(timeout=1)
            except socket.timeout:
                pass
""")

N = 3000
KILLS = 6


Delivery = tuple[int, str, bool, str]  # body, tag, redelivered, consumer


def _reader(proc: subprocess.Popen, consumer: str, seen: list[Delivery]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        fields = line.split()
        if len(fields) == 3 and line.endswith("\n"):  # not cut short by the kill
            seen.append((int(fields[0]), fields[2], fields[1] == "True", consumer))


def _run_and_kill(args: list[str], consumer: str, seen: list[Delivery], seconds: float) -> None:
    """Run a consumer process for ``seconds``, then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", CONSUMER, *args], stdout=subprocess.PIPE,
                            text=True)
    reader = threading.Thread(target=_reader, args=(proc, consumer, seen))
    reader.start()
    try:
        time.sleep(seconds)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert not reader.is_alive()


@pytest.mark.timeout(90)
def test_killed_consumers_lose_nothing(connect: Any, names: Any, redis_url: str, raw: Any,
                                       drain: Any, quiet: Any,
                                       check_deliveries: Callable[..., None]) -> None:
    conn = connect(**OPTIONS)
    queue = Queue(names("q"))
    producer = Producer(conn)
    queue(conn.default_channel).declare()
    seen: list[Delivery] = []
    rng = random.Random(os.getpid())

    def publish() -> None:
        for i in range(N):
            producer.publish(i, routing_key=queue.name)
            if i % 100 == 0:
                time.sleep(0.01)

    publisher = threading.Thread(target=publish)
    publisher.start()
    args = [redis_url, connect.prefix, queue.name, json.dumps(OPTIONS)]
    killed = {f"killed-{k}" for k in range(KILLS)}
    for consumer in sorted(killed):
        _run_and_kill(args, consumer, seen, rng.uniform(0.5, 1.0))
    publisher.join(60)
    assert not publisher.is_alive()
    assert len(seen) < N, "the killed consumers got through everything: no kill found a backlog"

    def on_message(body: Any, message: Any) -> None:
        message.ack()
        seen.append((body, message.delivery_tag,
                     bool(message.delivery_info.get("redelivered")), "survivor"))

    with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=50):
        deadline = time.monotonic() + 45
        while {d[0] for d in seen} != set(range(N)) and time.monotonic() < deadline:
            drain(conn, seen, len(seen) + 1, timeout=max(deadline - time.monotonic(), 0.1))
        while not quiet(conn, 1.5):  # redeliveries of what the last consumer held
            assert time.monotonic() < deadline, "messages keep coming back"
    check_deliveries(seen, set(range(N)), killed)
    # The kills did hit consumers that held messages, and those came back.
    assert any(redelivered for _, _, redelivered, _ in seen)
    assert raw.llen(connect.prefix + queue.name) == 0
    assert raw.hlen(connect.prefix + "unacked") == 0
    assert raw.zcard(connect.prefix + "unacked_index") == 0
