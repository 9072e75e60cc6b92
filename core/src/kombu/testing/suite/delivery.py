"""Ordering, acknowledgement, rejection, redelivery, prefetch and priorities."""

from __future__ import annotations

import pickle
import socket
import time
from typing import Any, Callable

from kombu import Connection, Consumer, Exchange, Queue
from kombu.exceptions import ContentDisallowed
from kombu.testing.fixtures import LIMITS, collect, declared, name, need, nothing_more
from kombu.testing.requirements import Requirements

__all__ = ("TestTransportDelivery",)


def _drain_until(conn: Connection, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + LIMITS.wait
    while not done() and time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=0.5)
        except socket.timeout:
            pass


def _flag(message: Any) -> bool:
    return bool(message.delivery_info.get("redelivered"))


class TestTransportDelivery:
    """What a consumer receives, in which order, and what comes back."""

    def test_properties_round_trip(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        producer.publish({"x": [1, 2]}, headers={"h": "v", "n": 3}, correlation_id="cid-1",
                         reply_to="replies", content_encoding="utf-8")
        ((body, message),) = collect(kombu_connection, queue, 1)
        assert body == {"x": [1, 2]}
        assert message.headers["h"] == "v" and message.headers["n"] == 3
        assert message.properties["correlation_id"] == "cid-1"
        assert message.properties["reply_to"] == "replies"
        assert message.content_type == "application/json"
        assert message.delivery_info["routing_key"] == "rk"

    def test_strict_fifo_within_a_priority(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        for i in range(100):
            producer.publish({"i": i})
        got = [b["i"] for b, _ in collect(kombu_connection, queue, 100, prefetch_count=10)]
        assert got == list(range(100))

    def test_reject_drops_the_message(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        producer.publish({"n": "dropped"})
        ((_, first),) = collect(kombu_connection, queue, 1, ack=False)
        first.reject()
        assert nothing_more(kombu_connection, queue) == []

    def test_requeue_redelivers_once(self, kombu_connection: Connection,
                                     transport_requirements: Requirements) -> None:
        queue, producer = declared(kombu_connection)
        producer.publish({"n": "again"})
        ((_, first),) = collect(kombu_connection, queue, 1, ack=False, prefetch_count=1)
        assert not _flag(first)
        first.requeue()
        got = collect(kombu_connection, queue, 1)
        assert [b for b, _ in got] == [{"n": "again"}]
        if transport_requirements.declares("redelivered_flag"):
            assert _flag(got[0][1])
        assert nothing_more(kombu_connection, queue) == []

    def test_requeue_puts_the_message_back_at_the_head(
            self, kombu_connection: Connection, transport_requirements: Requirements) -> None:
        need(transport_requirements, "requeue_at_head")
        queue, producer = declared(kombu_connection)
        for n in ("first", "second", "third"):
            producer.publish({"n": n})
        ((_, first),) = collect(kombu_connection, queue, 1, ack=False, prefetch_count=1)
        assert first.payload == {"n": "first"}
        first.requeue()
        got = collect(kombu_connection, queue, 3, prefetch_count=1)
        assert [b["n"] for b, _ in got] == ["first", "second", "third"], \
            "a requeued message must go back to the head of its queue"
        if transport_requirements.declares("redelivered_flag"):
            assert [_flag(m) for _, m in got] == [True, False, False]

    def test_unacked_restored_at_the_head_when_the_channel_closes(
            self, transport_url: str, transport_requirements: Requirements) -> None:
        need(transport_requirements, "restore_on_close")
        with Connection(transport_url) as conn:
            queue, producer = declared(conn)
            for n in range(1, 5):
                producer.publish({"n": n})
            channel = conn.channel()
            held = collect(conn, queue, 2, ack=False, channel=channel, prefetch_count=2)
            assert [b["n"] for b, _ in held] == [1, 2]
            channel.close()
            again = collect(conn, queue, 4, prefetch_count=1)
        assert [b["n"] for b, _ in again] == [1, 2, 3, 4], \
            "unacknowledged messages must go back to the head of their queue, in order"
        if transport_requirements.declares("redelivered_flag"):
            assert [_flag(m) for _, m in again] == [True, True, False, False]

    def test_basic_recover_requeues_unacked(self, transport_url: str,
                                            transport_requirements: Requirements) -> None:
        need(transport_requirements, "basic_recover")
        got: list[Any] = []
        with Connection(transport_url) as conn:
            queue, producer = declared(conn)
            producer.publish({"n": 1})
            producer.publish({"n": 2})
            channel = conn.channel()
            consumer = Consumer(channel, [queue], callbacks=[lambda b, m: got.append((b, m))],
                                prefetch_count=2)
            consumer.consume()
            _drain_until(conn, lambda: len(got) >= 2)
            assert [b["n"] for b, _ in got] == [1, 2]
            channel.basic_recover(requeue=True)
            _drain_until(conn, lambda: len(got) >= 4)
            for _, message in got[2:]:
                message.ack()
            channel.close()
        again = got[2:]
        assert sorted(b["n"] for b, _ in again) == [1, 2]
        if transport_requirements.declares("redelivered_flag"):
            assert all(_flag(m) for _, m in again)

    def test_no_ack_consumer_messages_do_not_come_back(self, transport_url: str) -> None:
        with Connection(transport_url) as conn:
            queue, producer = declared(conn)
            producer.publish({"n": 1})
            producer.publish({"n": 2})
            channel = conn.channel()
            got = collect(conn, queue, 2, channel=channel, no_ack=True)
            assert [b["n"] for b, _ in got] == [1, 2]
            channel.close()
            assert nothing_more(conn, queue, wait=0.5) == []

    def test_copies_routed_to_two_queues_are_acknowledged_apart(
            self, transport_url: str, transport_requirements: Requirements) -> None:
        """One publish reaching two queues: each copy has its own delivery tag,
        so acking one neither acks nor loses the other."""
        need(transport_requirements, "restore_on_close")
        with Connection(transport_url) as conn:
            exchange = Exchange(name("x"), "direct")
            queues = [Queue(name("q"), exchange, routing_key="rk") for _ in range(2)]
            for queue in queues:
                queue(conn.default_channel).declare()
            conn.Producer(exchange=exchange, routing_key="rk").publish({"n": 1})
            consuming = conn.channel()
            held = collect(conn, queues, 2, ack=False, channel=consuming)
            assert [b for b, _ in held] == [{"n": 1}] * 2
            assert held[0][1].delivery_tag != held[1][1].delivery_tag
            held[0][1].ack()
            consuming.close()  # the unacknowledged copy goes back to its queue
            again = [m for q in queues for _, m in collect(conn, q, 1, wait=1)]
        assert len(again) == 1 and again[0].payload == {"n": 1}

    def test_prefetch_is_honoured(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        for i in range(5):
            producer.publish({"i": i})
        # Two arrive at once; the other three must not come within a second.
        got = collect(kombu_connection, queue, 5, ack=False, wait=1.0, prefetch_count=2)
        assert len(got) == 2
        for _, message in got:
            message.ack()
        rest = collect(kombu_connection, queue, 3)
        assert sorted(b["i"] for b, _ in got + rest) == list(range(5))

    def test_priorities_and_fifo_within_each(self, kombu_connection: Connection,
                                             transport_requirements: Requirements) -> None:
        need(transport_requirements, "priorities")
        queue, producer = declared(kombu_connection, max_priority=9)
        sent = [(p, i) for i in range(3) for p in (0, 9, 3, 6)]
        for priority, i in sent:
            producer.publish({"p": priority, "i": i}, priority=priority)
        time.sleep(0.1)  # let an asynchronous broker route them
        got = [(b["p"], b["i"]) for b, _ in
               collect(kombu_connection, queue, len(sent), prefetch_count=1)]
        desc = transport_requirements.priority_order == "desc"
        expected = sorted(sent, key=lambda pi: (-pi[0] if desc else pi[0], pi[1]))
        assert got == expected

    def test_expired_messages_are_dropped(self, kombu_connection: Connection,
                                          transport_requirements: Requirements) -> None:
        need(transport_requirements, "ttl")
        queue, producer = declared(kombu_connection)
        producer.publish({"n": "expires"}, expiration=0.2)
        producer.publish({"n": "stays"})
        time.sleep(0.5)
        assert [b for b, _ in collect(kombu_connection, queue, 2, wait=1.0)] == [{"n": "stays"}]

    def test_pickle_refused_unless_accepted(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        producer.publish({"evil": True}, serializer="pickle")
        errors: list[BaseException] = []

        def on_decode_error(message: Any, exc: BaseException) -> None:
            errors.append(exc)
            message.ack()

        with Consumer(kombu_connection, [queue], callbacks=[lambda b, m: None],
                      on_decode_error=on_decode_error):
            kombu_connection.drain_events(timeout=LIMITS.wait)
        assert len(errors) == 1 and isinstance(errors[0], ContentDisallowed)
        producer.publish({"trusted": True}, serializer="pickle")
        got = collect(kombu_connection, queue, 1, accept=["pickle"])
        assert [b for b, _ in got] == [{"trusted": True}]
        assert pickle.loads(pickle.dumps(errors[0])).__class__ is ContentDisallowed


