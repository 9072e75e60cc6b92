"""A pooled resource whose ``with`` block raised goes back closed.

The rule of every pool (connections, channels, producers): the pool
replaces the resource, so the next user gets a fresh one, connected on
first use; a block that did not raise gives the resource back as it is.
"""

from __future__ import annotations

import pytest
from amqp.exceptions import NotFound
from helpers import wait_until
from kombu import Connection, Exchange, Queue
from kombu.pools import ProducerPool


class Boom(Exception):
    pass


@pytest.mark.rabbitmq
def test_connection_pool_after_not_found_with_confirms(qname: str) -> None:
    url = "amqp://guest:guest@127.0.0.1:5672//"
    pool = Connection(url, transport_options={"confirm_publish": True}).Pool(limit=1)
    try:
        with pytest.raises(NotFound):
            with pool.acquire(block=True, timeout=10) as conn:
                first = conn
                queue = conn.SimpleQueue(qname)
                queue.queue.delete()  # the queue is gone, so the get fails
                queue.get(block=False)  # NotFound, and the broker closes the channel
        with pool.acquire(block=True, timeout=10) as conn:
            assert not conn.connected  # replaced: reconnects on first use
            assert conn is not first
            assert not first.connected
            queue = conn.SimpleQueue(qname)
            queue.put({"ok": 1})  # a confirmed publish on the new connection
            message = queue.get(timeout=10)
            assert message.payload == {"ok": 1}
            message.ack()
            queue.queue.delete()
            queue.close()
            second = conn
        with pool.acquire(block=True, timeout=10) as conn:
            assert conn is second and conn.connected  # a clean block keeps it
    finally:
        pool.force_close_all()


def test_connection_pool_every_transport(broker_url: str, qname: str) -> None:
    pool = Connection(broker_url).Pool(limit=1)
    try:
        with pytest.raises(Boom):
            with pool.acquire(block=True, timeout=10) as conn:
                conn.default_channel  # noqa: B018 - connect
                failed = conn
                raise Boom()
        assert not failed.connected
        with pool.acquire(block=True, timeout=10) as conn:
            assert conn is not failed and not conn.connected
            queue = conn.SimpleQueue(qname)
            queue.put("hello")
            assert queue.get(timeout=10).payload == "hello"
            queue.queue.delete()
            queue.close()
    finally:
        pool.force_close_all()


def test_channel_pool(broker_url: str, qname: str) -> None:
    with Connection(broker_url) as conn:
        pool = conn.ChannelPool(limit=1)
        with pool.acquire(block=True, timeout=10) as channel:
            kept = channel
        with pool.acquire(block=True, timeout=10) as channel:
            # A clean block gives the channel back open (kombu closed it and
            # never released it, so the next acquire ran out of channels).
            assert channel is kept
            failed = channel
        with pytest.raises(Boom):
            with pool.acquire(block=True, timeout=10) as channel:
                raise Boom()
        with pool.acquire(block=True, timeout=10) as channel:
            assert channel is not failed
            queue = Queue(qname, routing_key=qname)(channel)
            queue.declare()
            conn.Producer(channel).publish({"n": 1}, routing_key=qname)
            queue.delete()


def test_producer_pool(broker_url: str, qname: str) -> None:
    connections = Connection(broker_url).Pool(limit=1)
    producers = ProducerPool(connections, limit=1)
    exchange = Exchange("", type="direct")
    try:
        with pytest.raises(Boom):
            with producers.acquire(block=True, timeout=10) as producer:
                producer.channel  # noqa: B018 - connect
                failed = producer.connection
                raise Boom()
        assert not failed.connected
        with producers.acquire(block=True, timeout=10) as producer:
            assert producer.connection is not failed
            queue = Queue(qname, exchange, routing_key=qname)
            producer.publish({"n": 2}, routing_key=qname, declare=[queue])
            with Connection(broker_url) as other:
                bound = queue(other.default_channel)
                got: list[object] = []
                wait_until(lambda: got.append(bound.get(no_ack=True)) or got[-1] is not None,
                           timeout=10, message="the published message")
                assert got[-1].payload == {"n": 2}  # type: ignore[attr-defined]
                bound.delete()
    finally:
        producers.force_close_all()
        connections.force_close_all()
