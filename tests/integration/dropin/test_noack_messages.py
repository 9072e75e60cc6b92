"""ack, reject and requeue of a message delivered without acknowledgement do nothing.

On RabbitMQ an ack of such a message names a delivery tag the broker never
expects an ack for, and the broker closes the channel (PRECONDITION_FAILED
- unknown delivery tag).  kombu skips the ack; so does this project, on
every transport, for reject and requeue too.
"""

from __future__ import annotations

import socket

import pytest
from helpers import wait_until
from kombu import Connection, Consumer, Queue


def _settle_every_way(message: object) -> None:
    message.ack()  # type: ignore[attr-defined]
    message.reject()  # type: ignore[attr-defined]
    message.requeue()  # type: ignore[attr-defined]
    message.reject(requeue=True)  # type: ignore[attr-defined]


def test_simple_buffer_on_a_priority_queue(broker_url: str, qname: str) -> None:
    with Connection(broker_url) as conn:
        queue = Queue(qname, routing_key=qname, max_priority=10)
        buffer = conn.SimpleBuffer(queue)
        try:
            for i in range(3):
                buffer.put({"i": i}, priority=i)
            got = []
            for _ in range(3):
                message = buffer.get(timeout=5)
                got.append(message.payload["i"])
                _settle_every_way(message)
                assert not message.acknowledged
            # The channel is alive: a confirmed publish and a get still work,
            # and nothing came back from the requeues.
            buffer.put({"i": "after"})
            message = buffer.get(timeout=5)
            assert message.payload == {"i": "after"}
            message.ack()
            assert sorted(got) == [0, 1, 2]
            with pytest.raises(buffer.Empty):
                buffer.get(block=False)
            assert buffer.qsize() == 0
        finally:
            buffer.queue.delete()
            buffer.close()


def test_no_ack_consumer_messages(broker_url: str, qname: str) -> None:
    with Connection(broker_url) as conn:
        queue = Queue(qname, routing_key=qname)
        channel = conn.channel()
        try:
            bound = queue(channel)
            bound.declare()
            producer = conn.Producer(channel)
            for i in range(3):
                producer.publish({"i": i}, routing_key=qname)
            received: list[object] = []
            with Consumer(channel, [queue], no_ack=True,
                          on_message=received.append):
                for _ in range(20):
                    if len(received) == 3:
                        break
                    try:
                        conn.drain_events(timeout=1)
                    except socket.timeout:
                        pass
                assert len(received) == 3
                for message in received:
                    _settle_every_way(message)
                producer.publish({"i": "after"}, routing_key=qname)
                for _ in range(10):
                    if len(received) == 4:
                        break
                    try:
                        conn.drain_events(timeout=1)
                    except socket.timeout:
                        pass
            assert [m.payload["i"] for m in received] == [0, 1, 2, "after"]  # type: ignore[attr-defined]
            assert bound.get(no_ack=False) is None  # nothing was requeued
        finally:
            queue(conn.default_channel).delete()
            channel.close()


def _get(queue: Queue, no_ack: bool) -> object:
    got: list[object] = []

    def fetch() -> bool:
        message = queue.get(no_ack=no_ack)
        if message is not None:
            got.append(message)
        return bool(got)

    wait_until(fetch, timeout=10, message=f"a message in {queue.name}")
    return got[0]


def test_basic_get_no_ack_then_acks_of_normal_messages_still_work(
        broker_url: str, qname: str) -> None:
    with Connection(broker_url) as conn:
        queue = Queue(qname, routing_key=qname)(conn.default_channel)
        queue.declare()
        try:
            producer = conn.Producer()
            producer.publish({"n": 1}, routing_key=qname)
            producer.publish({"n": 2}, routing_key=qname)
            first = _get(queue, no_ack=True)
            assert first.payload == {"n": 1}  # type: ignore[attr-defined]
            _settle_every_way(first)
            second = _get(queue, no_ack=False)
            assert second.payload == {"n": 2}  # type: ignore[attr-defined]
            second.requeue()  # type: ignore[attr-defined]  # really requeued
            assert second.acknowledged  # type: ignore[attr-defined]
            again = _get(queue, no_ack=False)
            assert again.payload == {"n": 2}  # type: ignore[attr-defined]
            again.ack()  # type: ignore[attr-defined]
            assert queue.get(no_ack=False) is None
        finally:
            queue.delete()
