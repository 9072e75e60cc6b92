"""Exchanges and routing, within a connection, across connections and processes."""

from __future__ import annotations

import socket
import time
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.testing.fixtures import (
    LIMITS,
    collect,
    name,
    need,
    nothing_more,
    run_worker,
)
from kombu.testing.requirements import Requirements

__all__ = ("TestTransportRouting",)


class TestTransportRouting:
    """Direct, topic, fanout and headers exchanges."""

    def test_direct(self, kombu_connection: Connection) -> None:
        exchange = Exchange(name("x"), "direct")
        q1 = Queue(name("q"), exchange, routing_key="a")
        q2 = Queue(name("q"), exchange, routing_key="b")
        channel = kombu_connection.default_channel
        for q in (q1, q2):
            q(channel).declare()
        producer = Producer(channel, exchange)
        producer.publish({"to": "a"}, routing_key="a")
        producer.publish({"to": "b"}, routing_key="b")
        producer.publish({"to": "nobody"}, routing_key="c")
        assert [b for b, _ in collect(kombu_connection, q1, 1)] == [{"to": "a"}]
        assert [b for b, _ in collect(kombu_connection, q2, 1)] == [{"to": "b"}]
        assert nothing_more(kombu_connection, q1) == []

    def test_topic(self, kombu_connection: Connection,
                   transport_requirements: Requirements) -> None:
        need(transport_requirements, "topic_exchange", kombu_connection)
        exchange = Exchange(name("x"), "topic")
        star = Queue(name("q"), exchange, routing_key="stock.*")
        hash_ = Queue(name("q"), exchange, routing_key="stock.#")
        channel = kombu_connection.default_channel
        for q in (star, hash_):
            q(channel).declare()
        producer = Producer(channel, exchange)
        for rk in ("stock.usd", "stock.eur.nyse", "bond.usd"):
            producer.publish({"rk": rk}, routing_key=rk)
        got_star = [b["rk"] for b, _ in collect(kombu_connection, star, 1)]
        got_hash = sorted(b["rk"] for b, _ in collect(kombu_connection, hash_, 2))
        assert got_star == ["stock.usd"]
        assert got_hash == ["stock.eur.nyse", "stock.usd"]
        assert nothing_more(kombu_connection, star) == []

    def test_fanout_reaches_consumers_on_other_connections(
            self, transport_url: str, transport_requirements: Requirements) -> None:
        with Connection(transport_url) as producing:
            need(transport_requirements, "fanout_exchange", producing)
            exchange = Exchange(name("x"), "fanout")
            queues = [Queue(name("q"), exchange) for _ in range(2)]
            conns = [Connection(transport_url) for _ in queues]
            got: list[list[Any]] = [[] for _ in queues]
            consumers = []
            try:
                # Consumers first: on broadcast stores (Redis PUB/SUB) a fanout
                # message reaches only the queues being consumed when it is sent.
                for conn, queue, box in zip(conns, queues, got):
                    consumer = Consumer(conn, [queue], callbacks=[_appender(box)])
                    consumer.consume()
                    consumers.append(consumer)
                Producer(producing.default_channel, exchange).publish(
                    {"all": True}, routing_key="ignored")
                deadline = time.monotonic() + LIMITS.wait
                for conn, box in zip(conns, got):
                    while not box and time.monotonic() < deadline:
                        try:
                            conn.drain_events(timeout=0.5)
                        except socket.timeout:
                            pass
            finally:
                for conn in conns:
                    conn.close()
        assert got == [[{"all": True}]] * 2

    def test_headers(self, kombu_connection: Connection,
                     transport_requirements: Requirements) -> None:
        need(transport_requirements, "headers_exchange", kombu_connection)
        exchange = Exchange(name("x"), "headers")
        q_all = Queue(name("q"), exchange, binding_arguments={
            "x-match": "all", "format": "pdf", "type": "report"})
        q_any = Queue(name("q"), exchange, binding_arguments={
            "x-match": "any", "format": "pdf", "type": "log"})
        channel = kombu_connection.default_channel
        for q in (q_all, q_any):
            q(channel).declare()
        producer = Producer(channel, exchange)
        producer.publish({"n": 1}, headers={"format": "pdf", "type": "report"})
        producer.publish({"n": 2}, headers={"format": "zip", "type": "log"})
        assert [b["n"] for b, _ in collect(kombu_connection, q_all, 1)] == [1]
        assert sorted(b["n"] for b, _ in collect(kombu_connection, q_any, 2)) == [1, 2]

    def test_routing_across_two_connections(self, transport_url: str) -> None:
        """Exchanges and bindings declared on one connection route another's messages."""
        with Connection(transport_url) as declaring, Connection(transport_url) as publishing:
            exchange = Exchange(name("x"), "direct")
            queue = Queue(name("q"), exchange, routing_key="rk")
            queue(declaring.default_channel).declare()
            Producer(publishing.default_channel, exchange, routing_key="rk").publish({"n": 1})
            got = [b for b, _ in collect(declaring, queue, 1)]
        assert got == [{"n": 1}], "a binding made on one connection did not route " \
                                  "a message published on another"

    def test_routing_across_two_processes(self, transport_url: str,
                                          transport_requirements: Requirements) -> None:
        need(transport_requirements, "multiprocess")
        with Connection(transport_url) as conn:
            exchange = Exchange(name("x"), "direct")
            queue = Queue(name("q"), exchange, routing_key="rk")
            queue(conn.default_channel).declare()
            sent = run_worker("publish", transport_url, exchange.name, "rk",
                              [{"from": "child", "i": i} for i in range(3)])
            got = [b for b, _ in collect(conn, queue, 3)]
        assert sent == 3
        assert got == [{"from": "child", "i": i} for i in range(3)]


def _appender(box: list[Any]) -> Any:
    def on_message(body: Any, message: Any) -> None:
        box.append(body)
        message.ack()
    return on_message
