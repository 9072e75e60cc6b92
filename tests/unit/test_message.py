"""Message: decoding, acknowledgement states, redelivery, compression, repr."""

from __future__ import annotations

import logging
import zlib
from typing import Any

import pytest
from helpers import unique_name as unique
from kombu import Connection, Exchange, Producer, Queue
from kombu.exceptions import ContentDisallowed, DecodeError, MessageStateError
from kombu.message import Message
from kombu.serialization import registry


@pytest.fixture
def queue(channel: Any) -> Queue:
    q = Queue(unique("q"), channel=channel)
    q.declare()
    return q


def publish(channel: Any, queue: Queue, body: Any, **kwargs: Any) -> None:
    Producer(channel).publish(body, routing_key=queue.name, **kwargs)


# -- messages built by hand --------------------------------------------------

def test_defaults() -> None:
    m = Message()
    assert m.body is None
    assert (m.headers, m.properties, m.delivery_info, m.errors) == ({}, {}, {}, [])
    assert not m.acknowledged
    assert m.accept is None


def test_unbound_message_cannot_be_acked() -> None:
    m = Message(b"x")
    for action in (m.ack, m.reject, m.requeue):
        with pytest.raises(MessageStateError, match="does not have a receiving channel"):
            action()


def test_decode_json() -> None:
    m = Message('{"a": [1, 2]}', content_type="application/json", content_encoding="utf-8",
                postencode="utf-8")
    assert m.body == b'{"a": [1, 2]}'
    assert m.payload == {"a": [1, 2]}
    assert m.decode() is m.payload


def test_postencode_only_applies_to_text() -> None:
    assert Message(b"\xff", postencode="utf-8").body == b"\xff"
    assert Message("é", postencode="utf-8").body == "é".encode()
    assert Message("é").body == "é"


def test_decode_is_cached_even_for_falsy_results() -> None:
    calls: list[Any] = []

    def decoder(data: Any) -> Any:
        calls.append(data)
        return 0

    registry.register("counting-test", None, decoder, "application/x-counting-test")
    try:
        m = Message(b"0", content_type="application/x-counting-test", content_encoding="binary",
                    accept={"application/x-counting-test"})
        assert m.payload == 0
        assert m.decode() == 0
        assert m.payload == 0
        assert len(calls) == 1
    finally:
        registry.unregister("counting-test")


def test_accept_refuses_pickle() -> None:
    m = Message(b"\x80\x04K\x01.", content_type="application/x-python-serialize",
                content_encoding="binary", accept={"application/json"})
    with pytest.raises(ContentDisallowed):
        m.decode()


def test_default_accept_refuses_pickle() -> None:
    m = Message(b"\x80\x04K\x01.", content_type="application/x-python-serialize",
                content_encoding="binary")
    with pytest.raises(ContentDisallowed):
        m.decode()
    listed = Message(b"\x80\x04K\x01.", content_type="application/x-python-serialize",
                     content_encoding="binary", accept={"application/x-python-serialize"})
    assert listed.payload == 1


def test_corrupt_body_raises_decode_error() -> None:
    m = Message(b"{not json", content_type="application/json", content_encoding="utf-8")
    with pytest.raises(DecodeError):
        m.decode()


def test_compressed_body_is_decompressed() -> None:
    m = Message(zlib.compress(b'{"a": 1}'), content_type="application/json",
                content_encoding="utf-8", headers={"compression": "application/x-gzip"})
    assert m.errors == []
    assert m.body == b'{"a": 1}'
    assert m.payload == {"a": 1}


def test_corrupt_compressed_body_is_kept_as_an_error() -> None:
    m = Message(b"not zlib", content_type="application/json",
                headers={"compression": "application/x-gzip"})
    assert len(m.errors) == 1
    assert m.body == b"not zlib"
    with pytest.raises(zlib.error):
        m.decode()
    seen: list[tuple[Any, BaseException]] = []
    m._reraise_error(lambda message, exc: seen.append((message, exc)))
    assert seen[0][0] is m and isinstance(seen[0][1], zlib.error)


def test_unknown_compression_is_kept_as_an_error() -> None:
    m = Message(b"x", headers={"compression": "application/x-nope"})
    assert len(m.errors) == 1
    with pytest.raises(KeyError, match="x-nope"):
        m.decode()


def test_repr_shows_details_but_never_the_body() -> None:
    m = Message(b"secret-password", delivery_tag="tag-1", content_type="text/plain",
                properties={"correlation_id": "cid", "type": "t", "reply_to": "r"},
                delivery_info={"exchange": "ex", "routing_key": "rk", "redelivered": False})
    text = repr(m)
    assert "secret-password" not in text
    assert text.startswith(f"<Message object at {id(m):#x} with details ")
    for part in ("'state': 'RECEIVED'", "'content_type': 'text/plain'", "'delivery_tag': 'tag-1'",
                 "'body_length': 15", "'correlation_id': 'cid'", "'type': 't'",
                 "'exchange': 'ex'", "'routing_key': 'rk'"):
        assert part in text
    assert "reply_to" not in text


def test_repr_of_empty_message() -> None:
    assert "with details {'state': 'RECEIVED', 'properties': {}, 'delivery_info': {}}" in repr(
        Message())


def test_message_state_error_is_exposed() -> None:
    assert Message.MessageStateError is MessageStateError


# -- messages received from the memory transport -----------------------------

def test_ack_removes_the_message(channel: Any, queue: Queue) -> None:
    publish(channel, queue, "a")
    m = queue.get()
    m.ack()
    assert m.acknowledged
    channel.basic_recover(requeue=True)
    assert queue.get() is None


def test_double_ack_raises(channel: Any, queue: Queue) -> None:
    publish(channel, queue, "a")
    m = queue.get()
    m.ack()
    with pytest.raises(MessageStateError, match="Message already acknowledged with state: ACK"):
        m.ack()
    with pytest.raises(MessageStateError, match="state: ACK"):
        m.reject()
    with pytest.raises(MessageStateError, match="state: ACK"):
        m.requeue()


def test_ack_after_reject_raises(channel: Any, queue: Queue) -> None:
    publish(channel, queue, "a")
    m = queue.get()
    m.reject()
    assert m.acknowledged
    with pytest.raises(MessageStateError, match="state: REJECTED"):
        m.ack()


def test_reject_drops_the_message(channel: Any, queue: Queue) -> None:
    publish(channel, queue, "a")
    queue.get().reject()
    channel.basic_recover(requeue=True)
    assert queue.get() is None


def test_reject_with_requeue_redelivers(channel: Any, queue: Queue) -> None:
    publish(channel, queue, {"n": 1})
    first = queue.get()
    assert not first.delivery_info.get("redelivered")
    first.reject(requeue=True)
    again = queue.get()
    assert again.payload == {"n": 1}
    assert again.delivery_info.get("redelivered") is True
    again.ack()
    assert queue.get() is None


def test_requeue_redelivers(channel: Any, queue: Queue) -> None:
    publish(channel, queue, "x")
    first = queue.get()
    first.requeue()
    assert first._state == "REQUEUED"
    with pytest.raises(MessageStateError, match="REQUEUED"):
        first.ack()
    again = queue.get()
    assert again.payload == "x"
    again.ack()


def test_ack_of_no_ack_consumer_message_is_a_no_op(conn: Connection, channel: Any,
                                                      queue: Queue) -> None:
    received: list[Any] = []
    queue.consume("noack-tag", callback=received.append, no_ack=True)
    publish(channel, queue, "a")
    conn.drain_events(timeout=1)
    m = received[0]
    assert "noack-tag" in channel.no_ack_consumers
    m.delivery_info["consumer_tag"] = "noack-tag"
    m.ack()
    m.ack()  # still nothing to acknowledge
    assert not m.acknowledged
    queue.cancel("noack-tag")


def test_properties_and_delivery_info_arrive(channel: Any) -> None:
    ex = Exchange(unique("ex"), "direct")
    q = Queue(unique("q"), ex, "rk", channel=channel)
    q.declare()
    Producer(channel, ex).publish({"a": 1}, routing_key="rk", correlation_id="cid", priority=4,
                                  headers={"h": "v"})
    m = q.get()
    assert m.properties["correlation_id"] == "cid"
    assert m.properties["priority"] == 4
    assert m.headers == {"h": "v"}
    assert m.delivery_info["exchange"] == ex.name
    assert m.delivery_info["routing_key"] == "rk"
    assert m.content_type == "application/json"
    assert m.content_encoding == "utf-8"
    m.ack()


def test_ack_log_error_logs_instead_of_raising(channel: Any, queue: Queue,
                                                caplog: pytest.LogCaptureFixture) -> None:
    publish(channel, queue, "a")
    m = queue.get()
    m.ack()
    logger = logging.getLogger("test-message-acks")
    with caplog.at_level(logging.CRITICAL, logger="test-message-acks"):
        m.ack_log_error(logger, (MessageStateError,))
        m.reject_log_error(logger, (MessageStateError,), requeue=True)
    texts = [r.getMessage() for r in caplog.records]
    assert any(t.startswith("Couldn't ack ") for t in texts)
    assert any(t.startswith("Couldn't reject ") for t in texts)
    assert all(r.levelno == logging.CRITICAL for r in caplog.records)


def test_ack_log_error_lets_other_errors_through(channel: Any, queue: Queue) -> None:
    publish(channel, queue, "a")
    m = queue.get()
    m.ack()
    with pytest.raises(MessageStateError):
        m.ack_log_error(logging.getLogger("x"), (ValueError,))


def test_ack_log_error_acknowledges(channel: Any, queue: Queue) -> None:
    publish(channel, queue, "a")
    m = queue.get()
    m.ack_log_error(logging.getLogger("x"), (MessageStateError,))
    assert m._state == "ACK"
