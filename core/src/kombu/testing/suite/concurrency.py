"""Consumers in other threads and processes: nothing twice, nothing lost."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from typing import Any

from kombu import Connection, Consumer, Producer
from kombu.testing._worker import STOP
from kombu.testing.fixtures import LIMITS, Workers, declared, need
from kombu.testing.requirements import Requirements

__all__ = ("TestTransportConcurrency",)

#: Messages shared out among competing consumers.
COMPETING_MESSAGES = 200


class TestTransportConcurrency:
    """Several consumers of one queue."""

    def test_consumer_in_another_thread(self, transport_url: str) -> None:
        with Connection(transport_url) as conn:
            queue, producer = declared(conn)
        received: list[Any] = []
        ready = threading.Event()

        def on_message(body: Any, message: Any) -> None:
            received.append(body)
            message.ack()

        def consume() -> None:
            with Connection(transport_url) as conn:
                with Consumer(conn, [queue], callbacks=[on_message]):
                    ready.set()
                    deadline = time.monotonic() + LIMITS.wait
                    while len(received) < 3 and time.monotonic() < deadline:
                        try:
                            conn.drain_events(timeout=0.5)
                        except socket.timeout:
                            pass

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        assert ready.wait(LIMITS.wait)
        with Connection(transport_url) as conn:
            producer = Producer(conn.default_channel, producer.exchange, routing_key="rk")
            for i in range(3):
                producer.publish({"i": i})
        thread.join(LIMITS.wait + 5)
        assert not thread.is_alive()
        assert sorted(b["i"] for b in received) == [0, 1, 2]

    def test_competing_consumers_in_threads(self, transport_url: str) -> None:
        """Four consumers, each on its own connection: every message exactly once."""
        with Connection(transport_url) as conn:
            queue, producer = declared(conn)
            for i in range(COMPETING_MESSAGES):
                producer.publish({"i": i})
        received: list[int] = []
        lock = threading.Lock()
        errors: list[BaseException] = []
        start = threading.Barrier(4, timeout=LIMITS.wait)

        def on_message(body: Any, message: Any) -> None:
            with lock:
                received.append(body["i"])
            message.ack()

        def consume() -> None:
            try:
                with Connection(transport_url) as conn:
                    with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=1):
                        start.wait()
                        deadline = time.monotonic() + LIMITS.wait
                        idle = 0
                        while time.monotonic() < deadline and idle < 3:
                            try:
                                conn.drain_events(timeout=0.2)
                                idle = 0
                            except socket.timeout:
                                idle += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        threads = [threading.Thread(target=consume, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LIMITS.wait + 10)
        assert not any(t.is_alive() for t in threads) and errors == []
        _assert_each_once(received, COMPETING_MESSAGES)

    def test_competing_consumers_in_processes(self, transport_url: str,
                                              transport_requirements: Requirements) -> None:
        need(transport_requirements, "multiprocess")
        with Connection(transport_url) as conn:
            queue, producer = declared(conn)
            workers = Workers("consume", [transport_url, queue.name,
                                          producer.exchange.name, "rk", LIMITS.wait + 10], 2)
            try:
                workers.wait_ready()
                for i in range(COMPETING_MESSAGES):
                    producer.publish({"i": i})
                for _ in range(2):
                    producer.publish(STOP)
                results = workers.results()
            finally:
                workers.kill()
        received = [body["i"] for result in results for body in result]
        _assert_each_once(received, COMPETING_MESSAGES)


def _assert_each_once(received: list[int], total: int) -> None:
    twice = sorted(i for i, n in Counter(received).items() if n > 1)
    lost = sorted(set(range(total)) - set(received))
    assert twice == [], f"{len(twice)} messages were delivered more than once: {twice[:10]}"
    assert lost == [], f"{len(lost)} messages were lost: {lost[:10]}"
