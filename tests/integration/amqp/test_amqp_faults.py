"""Faults: broker-closed connections, channel errors, cuts, killed consumers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import amqp
import pytest
from amqp import spec
from amqp.serialization import dumps
from kombu import Connection, Exchange, Queue
from kombu.exceptions import AccessRefused

pytestmark = pytest.mark.rabbitmq

Names = Callable[[str], str]


def _count(channel: Any, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).message_count)


def _wait_count(channel: Any, queue: str, expected: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = _count(channel, queue)
        if count >= expected or time.monotonic() >= deadline:
            return count
        time.sleep(0.05)


def test_channel_error_does_not_kill_the_connection(connect: Callable[..., Any],
                                                    names: Names) -> None:
    conn = connect()
    name = names("q")
    Queue(name, auto_delete=True, max_priority=5)(conn.default_channel).declare()
    channel = conn.channel()
    with pytest.raises(tuple(conn.channel_errors)) as info:
        Queue(name, auto_delete=True, max_priority=9)(channel).declare()
    assert isinstance(info.value, amqp.exceptions.PreconditionFailed)
    assert "x-max-priority" in str(info.value)
    assert not isinstance(info.value, tuple(conn.connection_errors))
    assert conn.connected
    # The other channels and new ones still work.
    conn.Producer().publish("still here", routing_key=name)
    fresh = conn.channel()
    deadline = time.monotonic() + 5
    message = None
    while message is None and time.monotonic() < deadline:
        message = Queue(name)(fresh).get(no_ack=True)
    assert message is not None and message.payload == "still here"


def test_broker_closing_all_connections_then_ensure(
        vhost: str, names: Names, rabbitmqctl: Callable[..., str], drain: Any) -> None:
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    conn = Connection(url)
    try:
        queue = Queue(names("q"), durable=False, auto_delete=False)
        producer = conn.Producer()
        producer.publish("before", routing_key=queue.name, declare=[queue], retry=True)
        assert conn.connected
        old = conn.connection
        rabbitmqctl("close_all_connections", "-p", vhost, "kpa test: closed on purpose")
        time.sleep(0.3)  # let the broker's connection.close arrive
        errors: list[BaseException] = []
        producer.publish("after", routing_key=queue.name, declare=[queue], retry=True,
                         retry_policy={"max_retries": 5, "interval_start": 0.2,
                                       "errback": lambda exc, interval: errors.append(exc)})
        assert errors, "the publish should have met the closed connection"
        assert isinstance(errors[0], tuple(conn.recoverable_connection_errors))
        assert conn.connected and conn.connection is not old
        # A consumer sees the next close on drain_events, then reconnects.
        got: list[Any] = []
        consumer = conn.Consumer(queue, callbacks=[lambda body, message: (got.append(body),
                                                                          message.ack())])
        consumer.consume()
        drain(conn, got, 2)
        assert got == ["before", "after"]
        rabbitmqctl("close_all_connections", "-p", vhost, "kpa test: closed again")
        deadline = time.monotonic() + 10
        with pytest.raises(tuple(conn.recoverable_connection_errors)):
            while time.monotonic() < deadline:
                conn.drain_events(timeout=0.5)
        conn.ensure_connection(max_retries=3, interval_start=0.2)
        consumer.revive(conn.channel())
        consumer.consume()
        conn.Producer().publish("third", routing_key=queue.name)
        drain(conn, got, 3)
        assert got[2] == "third"
    finally:
        conn.close()


def test_consumer_killed_with_unacked_messages_loses_nothing(
        amqp_url: str, names: Names, connect: Callable[..., Any]) -> None:
    queue_name = names("q")
    total, held = 20, 5
    conn = connect()
    queue = Queue(queue_name, durable=False, auto_delete=False)
    producer = conn.Producer()
    for i in range(total):
        producer.publish({"i": i}, routing_key=queue_name, declare=[queue])
    script = textwrap.dedent(f"""
        import sys, time
        from kombu import Connection, Queue
        got = []
        with Connection({amqp_url!r}) as conn:
            queue = Queue({queue_name!r}, durable=False, auto_delete=False)
            with conn.Consumer(queue, callbacks=[lambda b, m: got.append(m)],
                               prefetch_count={held}):
                deadline = time.monotonic() + 20
                while len(got) < {held} and time.monotonic() < deadline:
                    try:
                        conn.drain_events(timeout=1)
                    except OSError:
                        pass
                print("holding", len(got), flush=True)
                time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded by the script's own deadline
        assert line.strip() == f"holding {held}", proc.stderr.read() if proc.stderr else line
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    seen: dict[int, bool] = {}
    bound = queue(conn.default_channel)
    deadline = time.monotonic() + 15
    while len(seen) < total and time.monotonic() < deadline:
        message = bound.get(no_ack=False)
        if message is None:
            time.sleep(0.05)
            continue
        seen[message.payload["i"]] = message.delivery_info["redelivered"]
        message.ack()
    assert sorted(seen) == list(range(total)), "messages were lost"
    assert sum(seen.values()) == held
    assert all(seen[i] for i in range(held)), "held messages must come back flagged"


def test_cut_mid_publish_with_confirms_loses_no_confirmed_message(
        fault_proxy: Callable[[], Any], names: Names, raw: Any) -> None:
    proxy = fault_proxy()
    queue = Queue(names("q"), durable=False, auto_delete=False)
    conn = Connection(proxy.url("amqp", "//"), transport_options={"confirm_publish": True})
    try:
        producer = conn.Producer()
        producer.publish(-1, routing_key=queue.name, declare=[queue])
        proxy.cut_after(20_000)  # about 60 more messages, then a reset mid-frame
        confirmed: list[int] = []
        with pytest.raises(tuple(conn.connection_errors)):
            for i in range(10_000):
                producer.publish({"i": i, "pad": "x" * 200}, routing_key=queue.name)
                confirmed.append(i)
        assert 10 < len(confirmed) < 10_000
    finally:
        conn.collect()
    count = _wait_count(raw, queue.name, len(confirmed) + 1)
    # Every confirmed message is there; at most the one in flight is extra.
    assert len(confirmed) + 1 <= count <= len(confirmed) + 2
    ids = set()
    while True:
        message = raw.basic_get(queue.name, no_ack=True)
        if message is None:
            break
        value = json.loads(message.body)
        ids.add(value["i"] if isinstance(value, dict) else value)
    assert set(confirmed) <= ids


class _SilentLoginBroker:
    """A fake AMQP broker that closes the socket on the login, as brokers
    without ``authentication_failure_close`` do on bad credentials."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            client, _ = self.sock.accept()
        except OSError:
            return
        with client:
            client.settimeout(10)
            client.recv(8)  # the protocol header
            args = dumps("ooFSS", (0, 9, {"product": "fake", "capabilities": {}},
                                   "PLAIN AMQPLAIN", "en_US"))
            payload = spec.Connection.Start[0].to_bytes(2, "big") + \
                spec.Connection.Start[1].to_bytes(2, "big") + args
            client.sendall(b"\x01\x00\x00" + len(payload).to_bytes(4, "big") + payload + b"\xce")
            client.recv(4096)  # start-ok with the credentials: hang up

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def silent_login_broker() -> Iterator[_SilentLoginBroker]:
    broker = _SilentLoginBroker()
    yield broker
    broker.close()


def test_socket_closed_during_login_is_access_refused(
        silent_login_broker: _SilentLoginBroker) -> None:
    conn = Connection(f"amqp://guest:secret-pw@127.0.0.1:{silent_login_broker.port}//",
                      connect_timeout=3)
    started = time.monotonic()
    with pytest.raises(AccessRefused) as info:
        conn.ensure_connection(max_retries=3, interval_start=1)
    assert time.monotonic() - started < 5
    assert "secret-pw" not in str(info.value)
    assert "closed the connection during the login" in str(info.value)


def test_publish_after_broker_closed_connection_needs_ensure(
        vhost: str, names: Names, rabbitmqctl: Callable[..., str]) -> None:
    conn = Connection(f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    try:
        exchange = Exchange(names("ex"), "direct", auto_delete=False)
        producer = conn.Producer(exchange=exchange)
        producer.publish("one", routing_key="k", declare=[exchange])
        rabbitmqctl("close_all_connections", "-p", vhost, "kpa test")
        # Without retry the error surfaces as a recoverable connection error.
        deadline = time.monotonic() + 10
        with pytest.raises(tuple(conn.recoverable_connection_errors)):
            while time.monotonic() < deadline:
                producer.publish("lost?", routing_key="k")
                time.sleep(0.05)
        assert not conn.connected
    finally:
        conn.collect()


def test_publish_timeout_on_a_stalled_broker(fault_proxy: Callable[[], Any]) -> None:
    proxy = fault_proxy()
    conn = Connection(proxy.url("amqp", "//"))
    try:
        producer = conn.Producer()
        producer.publish("small", routing_key="nowhere", timeout=5)
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(tuple(conn.recoverable_connection_errors)) as info:
            producer.publish(b"x" * 50_000_000, routing_key="nowhere", timeout=1)
        assert "timed out" in str(info.value)
        assert time.monotonic() - started < 10
    finally:
        conn.collect()
