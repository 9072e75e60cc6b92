"""A transport written the kombu 5.x way runs unmodified on the virtual layer.

The transport below uses only what kombu 5.x transports use: class-level
queue state on the Channel (``Channel.queues``, as kombu's memory transport
keeps it), a :class:`virtual.QoS` subclass, fanout through ``_put_fanout``
and ``_queue_bind``, and ``_restore_at_beginning`` to put a requeued
message at the head of its queue.
"""

from __future__ import annotations

import socket
from collections import deque
from queue import Empty
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.transport import virtual


class CountingQoS(virtual.QoS):
    """kombu 5.x style: subclass QoS and hook restore_unacked."""

    restored = 0

    def restore_unacked(self) -> Any:
        pending = len(self._delivered) - len(self._dirty)
        errors = super().restore_unacked()
        type(self).restored += pending - len(errors)
        return errors


class Channel(virtual.Channel):
    QoS = CountingQoS
    queues: dict[str, deque[Any]] = {}
    fanout: dict[str, set[str]] = {}
    do_restore = True
    supports_fanout = True

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return queue in self.queues

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        self.queues.setdefault(queue, deque())

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        try:
            return self.queues[queue].popleft()
        except (KeyError, IndexError):
            raise Empty() from None

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        self.queues.setdefault(queue, deque()).append(message)

    def _size(self, queue: str) -> int:
        return len(self.queues.get(queue, ()))

    def _purge(self, queue: str) -> int:
        items = self.queues.get(queue)
        count = len(items) if items else 0
        if items:
            items.clear()
        return count

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        self.queues.pop(queue, None)
        for bound in self.fanout.values():
            bound.discard(queue)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        if self.typeof(exchange).type == "fanout":
            self.fanout.setdefault(exchange, set()).add(queue)

    def _put_fanout(self, exchange: str, message: Any, routing_key: str, **kwargs: Any) -> None:
        for queue in self.fanout.get(exchange, ()):
            self._put(queue, message)

    def _restore_at_beginning(self, message: Any) -> None:
        payload = message.serializable()
        payload["redelivered"] = True
        queue = message.delivery_info["routing_key"]
        self.queues.setdefault(queue, deque()).appendleft(payload)


class Transport(virtual.Transport):
    Channel = Channel
    driver_type = driver_name = "kombu5-style"
    global_state = virtual.BrokerState()
    implements = virtual.Transport.implements.extend(
        exchange_type=frozenset(["direct", "topic", "fanout"]))

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.state = self.global_state


def _drain(conn: Connection, got: list[Any], n: int) -> None:
    for _ in range(50):
        if len(got) >= n:
            return
        try:
            conn.drain_events(timeout=0.1)
        except socket.timeout:
            pass
    raise AssertionError(f"{len(got)} of {n} messages arrived")


@pytest.fixture
def conn() -> Any:
    Channel.queues.clear()
    Channel.fanout.clear()
    with Connection(transport=Transport) as connection:
        yield connection


def test_publish_consume_ack(conn: Connection, unique: Any) -> None:
    name = unique("q")
    queue = Queue(name, Exchange(name, "direct"), routing_key=name)
    Producer(conn).publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
    assert len(Channel.queues[name]) == 1  # the state lives on the Channel class
    got: list[Any] = []
    with Consumer(conn, [queue], on_message=got.append):
        _drain(conn, got, 1)
    assert got[0].payload == {"n": 1}
    got[0].ack()
    assert not Channel.queues[name]


def test_requeue_goes_to_the_head_through_restore_at_beginning(
        conn: Connection, unique: Any) -> None:
    name = unique("q")
    queue = Queue(name, Exchange(name, "direct"), routing_key=name)
    producer = Producer(conn)
    for n in range(3):
        producer.publish({"n": n}, exchange=queue.exchange, routing_key=name, declare=[queue])
    channel = conn.channel()
    got: list[Any] = []
    with Consumer(channel, [queue], on_message=got.append, prefetch_count=1):
        _drain(conn, got, 1)
        assert [m.payload["n"] for m in got] == [0]  # the QoS holds back the rest
        got[0].requeue()
        _drain(conn, got, 2)
        assert got[1].payload == {"n": 0}  # back at the head, before 1 and 2
        assert got[1].delivery_info["redelivered"]
        got[1].ack()
        _drain(conn, got, 3)
        assert got[2].payload == {"n": 1}
        got[2].ack()
        _drain(conn, got, 4)
        got[3].ack()
    assert [m.payload["n"] for m in got] == [0, 0, 1, 2]
    channel.close()


def test_unacked_messages_are_restored_through_the_qos(conn: Connection, unique: Any) -> None:
    name = unique("q")
    queue = Queue(name, Exchange(name, "direct"), routing_key=name)
    Producer(conn).publish("keep me", exchange=queue.exchange, routing_key=name,
                           declare=[queue])
    before = CountingQoS.restored
    channel = conn.channel()
    got: list[Any] = []
    consumer = Consumer(channel, [queue], on_message=got.append)
    consumer.consume()
    _drain(conn, got, 1)
    channel.close()  # not acked: the QoS puts it back
    assert CountingQoS.restored == before + 1
    assert len(Channel.queues[name]) == 1
    message = Queue(name)(conn.channel()).get()
    assert message.payload == "keep me" and message.delivery_info["redelivered"]
    message.ack()


def test_fanout(conn: Connection, unique: Any) -> None:
    exchange = Exchange(unique("fan"), "fanout")
    queues = [Queue(unique("q"), exchange) for _ in range(2)]
    for queue in queues:
        queue(conn.default_channel).declare()
    Producer(conn).publish("to all", exchange=exchange)
    for queue in queues:
        message = queue(conn.default_channel).get()
        assert message is not None and message.payload == "to all"
        message.ack()
