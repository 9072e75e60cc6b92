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
import kombu.exceptions
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
        assert isinstance(info.value.__cause__, OSError)
    finally:
        conn.collect()


def test_publish_timeout_chains_the_socket_error_and_drops_the_connection(
        fault_proxy: Callable[[], Any]) -> None:
    proxy = fault_proxy()
    conn = Connection(proxy.url("amqp", "//"))
    try:
        producer = conn.Producer()
        producer.publish("small", routing_key="nowhere", timeout=5)
        proxy.stall(seconds=20)
        with pytest.raises(amqp.exceptions.RecoverableConnectionError) as info:
            producer.publish(b"x" * 50_000_000, routing_key="nowhere", timeout=1)
        assert isinstance(info.value.__cause__, socket.timeout)
        # A frame may be half written: the connection is not used again.
        assert not conn.connected
        started = time.monotonic()
        conn.close()
        assert time.monotonic() - started < 1, "close must not talk to a broken stream"
    finally:
        conn.collect()


# write_timeout (SO_SNDTIMEO) alone, with the kernel's TCP_USER_TIMEOUT (the
# driver sets 1 s) out of the way; and with the driver's defaults, where
# whichever of the two expires first ends the write.
_WRITE_TIMEOUT_OPTIONS = {
    "write_timeout": {"write_timeout": 1,
                      "socket_settings": {getattr(socket, "TCP_USER_TIMEOUT", 18): 60_000}},
    "write_timeout_driver_defaults": {"write_timeout": 1},
}


@pytest.mark.parametrize("case", sorted(_WRITE_TIMEOUT_OPTIONS))
def test_write_timeout_expires_as_a_recoverable_connection_error(
        fault_proxy: Callable[[], Any], case: str) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("SO_SNDTIMEO and TCP_USER_TIMEOUT behave so on Linux")
    proxy = fault_proxy()
    conn = Connection(proxy.url("amqp", "//"), transport_options=_WRITE_TIMEOUT_OPTIONS[case])
    try:
        producer = conn.Producer()
        producer.publish("small", routing_key="nowhere")
        # Bounded: a write that ignored write_timeout would complete when the
        # stall ends, and the test would fail instead of hanging.
        proxy.stall(seconds=25)
        started = time.monotonic()
        with pytest.raises(amqp.exceptions.RecoverableConnectionError) as info:
            producer.publish(b"x" * 50_000_000, routing_key="nowhere")  # no timeout=
        elapsed = time.monotonic() - started
        assert elapsed < 15, f"the write took {elapsed:.1f}s"
        assert "basic_publish: timed out" in str(info.value)
        assert isinstance(info.value, tuple(conn.recoverable_connection_errors))
        assert isinstance(info.value.__cause__, OSError), repr(info.value.__cause__)
        assert not conn.connected
        started = time.monotonic()
        conn.close()
        assert time.monotonic() - started < 1
    finally:
        conn.collect()


def test_read_timeout_expires_and_loses_nothing(
        fault_proxy: Callable[[], Any], names: Names, connect: Callable[..., Any],
        drain: Any) -> None:
    proxy = fault_proxy()
    conn = Connection(proxy.url("amqp", "//"), transport_options={"read_timeout": 1})
    try:
        queue = Queue(names("q"), durable=False, auto_delete=False)
        got: list[Any] = []
        consumer = conn.Consumer(queue, callbacks=[lambda body, message: (got.append(body),
                                                                          message.ack())])
        consumer.consume()
        # Bounded: a drain that ignored read_timeout would get the message when
        # the stall ends, and the test would fail instead of hanging.
        proxy.stall(seconds=5)
        connect().Producer().publish("late", routing_key=queue.name)  # straight to the broker
        started = time.monotonic()
        with pytest.raises(tuple(conn.recoverable_connection_errors)) as info:
            conn.drain_events()  # no timeout: only read_timeout ends the wait
        elapsed = time.monotonic() - started
        assert isinstance(info.value, socket.timeout), repr(info.value)
        assert 0.8 <= elapsed < 4, f"read_timeout=1 expired after {elapsed:.1f}s"
        assert got == []
        # The connection is intact: the message arrives once the stall ends.
        assert conn.connected
        drain(conn, got, 1, timeout=20)
        assert got == ["late"]
    finally:
        conn.collect()


def _unacked(rabbitmqctl: Callable[..., str], vhost: str, queue: str) -> int:
    out = rabbitmqctl("list_queues", "-p", vhost, "name", "messages_unacknowledged",
                      "--no-table-headers", "-q")
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == queue:
            return int(fields[1])
    raise AssertionError(f"rabbitmqctl does not list {queue}: {out!r}")


def test_broker_closing_connections_redelivers_the_unacked_messages(
        vhost: str, names: Names, rabbitmqctl: Callable[..., str], drain: Any,
        quiet: Any) -> None:
    total, acked_first = 10, 3
    conn = Connection(f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    try:
        queue = Queue(names("q"), durable=False, auto_delete=False)
        producer = conn.Producer()
        for i in range(total):
            producer.publish({"i": i}, routing_key=queue.name, declare=[queue])
        seen: list[Any] = []
        acked: list[int] = []
        held: list[int] = []

        def ack_some(body: Any, message: Any) -> None:
            seen.append(body)
            assert not message.delivery_info["redelivered"]
            if len(acked) < acked_first:
                message.ack()
                acked.append(body["i"])
            else:
                held.append(body["i"])  # never acked

        consumer = conn.Consumer(queue, callbacks=[ack_some], prefetch_count=total)
        consumer.consume()
        drain(conn, seen, total)
        assert acked == list(range(acked_first)) and held == list(range(acked_first, total))
        # A round trip on the consumer's channel: the broker has the acks.
        assert consumer.channel.queue_declare(queue.name, passive=True).message_count == 0
        deadline = time.monotonic() + 10
        while _unacked(rabbitmqctl, vhost, queue.name) != len(held):
            assert time.monotonic() < deadline, "the broker does not hold the unacked messages"
            time.sleep(0.1)

        rabbitmqctl("close_all_connections", "-p", vhost, "kpa test: unacked messages")
        deadline = time.monotonic() + 10
        with pytest.raises(tuple(conn.recoverable_connection_errors)) as info:
            while time.monotonic() < deadline:
                conn.drain_events(timeout=0.5)
        assert isinstance(info.value, amqp.exceptions.ConnectionForced), repr(info.value)
        assert isinstance(info.value, kombu.exceptions.ConnectionError)

        conn.ensure_connection(max_retries=3, interval_start=0.2)
        again: list[tuple[int, bool]] = []

        def ack_all(body: Any, message: Any) -> None:
            again.append((body["i"], message.delivery_info["redelivered"]))
            message.ack()

        consumer.callbacks = [ack_all]
        consumer.revive(conn.channel())
        consumer.consume()
        # Requeued messages keep their place ahead of a new one: once the new
        # one arrives, every message that came back has been seen.
        conn.Producer().publish({"i": total}, routing_key=queue.name)
        drain(conn, again, len(held) + 1)
        assert quiet(conn, 0.5), f"more messages than expected: {again}"
        assert again[-1] == (total, False)
        back = dict(again[:-1])
        assert sorted(back) == held, "held messages were lost or acked ones came back"
        assert all(back.values()), f"redelivered must be set: {back}"
        assert not set(back) & set(acked)
        assert consumer.channel.queue_declare(queue.name, passive=True).message_count == 0
        deadline = time.monotonic() + 10
        while _unacked(rabbitmqctl, vhost, queue.name) != 0:
            assert time.monotonic() < deadline, "acks of the redelivered messages are missing"
            time.sleep(0.1)
    finally:
        conn.close()
