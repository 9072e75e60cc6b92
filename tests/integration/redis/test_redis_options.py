"""Transport options, each shown to reach Redis or the sockets.

What a client sends is read back with ``MONITOR`` (bounded reads, filtered on
the test's own key prefix or client), socket options with ``getsockopt``.
"""

from __future__ import annotations

import codecs
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.faultproxy import FaultProxy
from kombu import Connection, Consumer, Producer, Queue
from kombu.exceptions import OperationalError

pytestmark = pytest.mark.redis

redis = pytest.importorskip("redis")

_LINE = re.compile(r'^[\d.]+ \[\d+ (?P<client>[^\]]+)\] (?P<args>.*)$')


class Monitor:
    """The commands Redis runs, as seen by ``MONITOR`` (every read bounded)."""

    def __init__(self) -> None:
        self.conn = redis.Connection(host="127.0.0.1", port=6379)
        self.conn.connect()
        self.conn.send_command("MONITOR")
        assert self.conn.read_response() == b"OK"

    def commands(self, seconds: float = 0.3) -> list[tuple[str, list[str]]]:
        """(client address, arguments) of the commands seen until ``seconds`` of quiet."""
        out = []
        while self.conn.can_read(seconds):
            match = _LINE.match(self.conn.read_response().decode(errors="replace"))
            if match:
                args = [codecs.escape_decode(a[1:-1].encode())[0].decode("latin-1")
                        for a in re.findall(r'"(?:[^"\\]|\\.)*"', match["args"])]
                out.append((match["client"], args))
        return out

    def close(self) -> None:
        self.conn.disconnect()


@pytest.fixture
def monitor(redis_url: str) -> Iterator[Monitor]:
    mon = Monitor()
    yield mon
    mon.close()


def _addr(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def _expire_records(raw: Any, prefix: str, queue: str, n: int) -> list[str]:
    """``n`` unacknowledged records of ``queue`` (kombu 5.x's layout) that are overdue."""
    tags = []
    for i in range(n):
        tag = f"{prefix}tag-{i}"
        payload = {"body": str(i), "content-encoding": "utf-8", "content-type": "text/plain",
                   "headers": {}, "properties": {
                       "delivery_tag": tag, "body_encoding": None, "priority": 0,
                       "delivery_info": {"exchange": "", "routing_key": queue}}}
        raw.hset(prefix + "unacked", tag, json.dumps([payload, "", queue]))
        raw.zadd(prefix + "unacked_index", {tag: 1.0})
        tags.append(tag)
    return tags


def test_unacked_mutex_key_and_expire(connect: Any, names: Any, raw: Any,
                                      monitor: Monitor) -> None:
    prefix = connect.prefix
    conn = connect(visibility_timeout=1, unacked_mutex_key="my-mutex", unacked_mutex_expire=7)
    queue = Queue(names("q"))
    _expire_records(raw, prefix, queue.name, 3)
    channel = conn.default_channel
    raw.set(prefix + "unacked_mutex", "someone")  # the default name: not ours
    raw.set(prefix + "my-mutex", "someone")       # held by another restorer
    channel.restorer.restore_visible()
    assert raw.llen(prefix + queue.name) == 0, "restored while another restorer held the mutex"
    raw.delete(prefix + "my-mutex")
    monitor.commands(0.1)
    channel.restorer.restore_visible()
    assert raw.llen(prefix + queue.name) == 3
    sets = [args for _, args in monitor.commands() if args[:2] == ["SET", prefix + "my-mutex"]]
    assert len(sets) == 1 and "NX" in sets[0], sets
    assert sets[0][sets[0].index("PX") + 1] == "7000", sets
    assert raw.get(prefix + "my-mutex") is None  # released
    assert raw.get(prefix + "unacked_mutex") == b"someone"


def test_unacked_restore_limit_batches_and_restores_all(connect: Any, names: Any, raw: Any,
                                                        monitor: Monitor) -> None:
    prefix = connect.prefix
    conn = connect(visibility_timeout=1, unacked_restore_limit=10)
    queue = Queue(names("q"))
    _expire_records(raw, prefix, queue.name, 25)
    monitor.commands(0.1)
    conn.default_channel.restorer.restore_visible()
    assert raw.llen(prefix + queue.name) == 25
    assert raw.hlen(prefix + "unacked") == 0 and raw.zcard(prefix + "unacked_index") == 0
    scans = [args for _, args in monitor.commands()
             if args[:2] == ["ZRANGEBYSCORE", prefix + "unacked_index"]]
    assert len(scans) == 3, scans  # 10 + 10 + 5
    assert all(args[-3:] == ["LIMIT", "0", "10"] for args in scans), scans


def test_socket_connect_timeout_option(redis_url: str) -> None:
    with FaultProxy(("127.0.0.1", 6379)) as proxy:
        proxy.blackhole()  # accepts, never answers
        conn = Connection(proxy.url("redis", "/0"), connect_timeout=30,
                          transport_options={"socket_connect_timeout": 0.5})
        start = time.monotonic()
        with pytest.raises(OperationalError):
            conn.ensure_connection(max_retries=0)
        assert time.monotonic() - start < 2.5
        conn.close()


@pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="needs TCP_KEEPIDLE (Linux)")
def test_socket_keepalive_and_its_options(connect: Any, names: Any) -> None:
    options = {socket.TCP_KEEPIDLE: 17, socket.TCP_KEEPINTVL: 4, socket.TCP_KEEPCNT: 3}
    conn = connect(socket_keepalive=True, socket_keepalive_options=options)
    channel = conn.default_channel
    queue = Queue(names("q"))
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: got.append(b)]):
        with pytest.raises(TimeoutError):
            conn.drain_events(timeout=0.2)  # the waiter's connection is open now
        pooled = channel.pool.get_connection()
        try:
            pooled.connect()
            for sock in (channel.link.sock, channel.waiter.sock, pooled._sock):
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                for option, value in options.items():
                    assert sock.getsockopt(socket.IPPROTO_TCP, option) == value
        finally:
            channel.pool.release(pooled)
    plain = connect()
    assert plain.default_channel.link.sock.getsockopt(socket.SOL_SOCKET,
                                                        socket.SO_KEEPALIVE) == 0


@pytest.mark.parametrize("interval,pings", [(1, True), (0, False)])
def test_health_check_interval(connect: Any, names: Any, monitor: Monitor,
                               interval: int, pings: bool) -> None:
    conn = connect(health_check_interval=interval)
    channel = conn.default_channel
    queue = Queue(names("q"))
    queue(channel).declare()
    me = _addr(channel.link.sock)
    time.sleep(1.2)  # idle for longer than the interval
    monitor.commands(0.1)
    queue(channel).queue_declare(passive=True)
    mine = [args[0] for client, args in monitor.commands() if client == me]
    assert "LLEN" in mine
    assert (mine[0] == "PING") is pings, mine


def test_max_connections(connect: Any) -> None:
    # The pool waits (up to socket_timeout) for a free connection, then fails.
    conn = connect(max_connections=2, socket_timeout=0.3)
    pool = conn.default_channel.pool
    assert pool.max_connections == 2
    held = [pool.get_connection(), pool.get_connection()]
    try:
        with pytest.raises(redis.ConnectionError, match="No connection available"):
            pool.get_connection()
    finally:
        for c in held:
            pool.release(c)


def test_acks_from_many_threads_wait_for_a_pool_connection(connect: Any, names: Any,
                                                           raw: Any) -> None:
    """More threads ack at once than the pool has connections: none fails."""
    conn = connect(max_connections=2)
    queue = Queue(names("q"))
    producer = Producer(conn)
    n = 64
    for i in range(n):
        producer.publish(i, routing_key=queue.name, declare=[queue])
    messages = [queue(conn.default_channel).get() for _ in range(n)]
    assert all(m is not None for m in messages)
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def ack(batch: list[Any]) -> None:
        start.wait(10)
        for message in batch:
            try:
                message.ack()
            except Exception as exc:  # noqa: BLE001 - collected, asserted below
                errors.append(exc)

    threads = [threading.Thread(target=ack, args=(messages[i::16],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert raw.hlen(connect.prefix + "unacked") == 0


@pytest.mark.parametrize("retry", [True, False])
def test_retry_on_timeout_retries_a_timed_out_command_once(redis_url: str, names: Any,
                                                           raw: Any, retry: bool) -> None:
    prefix = names("p") + ":"
    queue = Queue(names("q"))
    db = redis_url.rsplit("/", 1)[1]
    with FaultProxy(("127.0.0.1", 6379)) as proxy, \
            Connection(proxy.url("redis", "/" + db), transport_options={
                "global_keyprefix": prefix, "socket_timeout": 0.5,
                "retry_on_timeout": retry}) as conn:
        channel = conn.default_channel
        Producer(channel).publish("m", routing_key=queue.name, declare=[queue])
        proxy.stall(0.8)  # the first attempt times out after 0.5 s
        start = time.monotonic()
        if retry:
            assert queue(channel).queue_declare(passive=True).message_count == 1
            assert channel.link.call("PING") == b"PONG"
            assert time.monotonic() - start < 3
        else:
            with pytest.raises(redis.TimeoutError):
                queue(channel).queue_declare(passive=True)
            assert 0.4 < time.monotonic() - start < 0.8


def test_sorted_queue_order_strategy(connect: Any, names: Any, drain: Any) -> None:
    conn = connect(queue_order_strategy="sorted")
    later, first = Queue(names("b")), Queue(names("a"))  # 'kr-a-...' sorts first
    producer = Producer(conn)
    for i in range(3):
        producer.publish(f"b{i}", routing_key=later.name, declare=[later])
        producer.publish(f"a{i}", routing_key=first.name, declare=[first])
    got: list[Any] = []
    with Consumer(conn, [later, first], callbacks=[lambda b, m: (got.append(b), m.ack())]):
        drain(conn, got, 6)
    assert got == ["a0", "a1", "a2", "b0", "b1", "b2"]


@pytest.mark.timeout(60)
def test_x_expires_is_refreshed_on_consume_then_expires(connect: Any, names: Any,
                                                        raw: Any) -> None:
    conn = connect()
    queue = Queue(names("q"), expires=1.5)
    key = connect.prefix + queue.name
    producer = Producer(conn)
    for i in range(3):
        producer.publish(i, routing_key=queue.name, declare=[queue])
    assert 1000 < raw.pttl(key) <= 1500
    time.sleep(0.9)
    assert raw.pttl(key) <= 600
    message = queue(conn.default_channel).get()  # consuming refreshes the TTL
    assert message is not None and message.payload == 0
    message.ack()
    assert raw.pttl(key) > 1000
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())],
                  prefetch_count=1):
        time.sleep(0.9)
        conn.drain_events(timeout=5)  # so does a consumer's fetch
        assert got == [1]
        assert raw.pttl(key) > 1000
    deadline = time.monotonic() + 5
    while raw.exists(key):  # nobody uses it any more: it expires with its message
        assert time.monotonic() < deadline, "the queue did not expire"
        time.sleep(0.1)
    assert queue(conn.default_channel).get() is None
