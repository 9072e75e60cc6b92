"""kombu.pidbox over a real RabbitMQ, between this project's nodes and with real kombu 5.x."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from helpers.kombu5 import kombu5_python
from helpers.pidbox import check_kombu5_client, check_kombu5_node, check_round_trip

amqp = pytest.importorskip("amqp", reason="kombu-pyamqp needs the amqp library (pip install amqp)")


@pytest.fixture
def namespace(amqp_url: str) -> Iterator[str]:
    """A mailbox namespace of the test's own; its exchanges are deleted afterwards."""
    name = f"celerymods-pbx-{uuid.uuid4().hex[:10]}"
    yield name
    conn = amqp.Connection("127.0.0.1:5672", connect_timeout=5)
    conn.connect()
    try:
        for exchange in (f"{name}.pidbox", f"reply.{name}.pidbox"):
            channel = conn.channel()
            try:
                channel.exchange_delete(exchange)
                channel.close()
            except amqp.exceptions.ChannelError:
                pass
    finally:
        conn.close()


def test_round_trip(amqp_url: str, namespace: str) -> None:
    check_round_trip(amqp_url, namespace)


def test_kombu5_node_answers_our_mailbox(amqp_url: str, namespace: str) -> None:
    check_kombu5_node(kombu5_python(), amqp_url, namespace)


def test_our_node_answers_a_kombu5_mailbox(amqp_url: str, namespace: str) -> None:
    check_kombu5_client(kombu5_python(), amqp_url, namespace)


def test_a_second_node_of_one_name(amqp_url: str, namespace: str) -> None:
    """The same name on one connection warns; on another connection it is refused."""
    from kombu import Connection
    from kombu.exceptions import InconsistencyError
    from kombu.pidbox import Mailbox

    mailbox = Mailbox(namespace, type="fanout")
    with Connection(amqp_url) as conn, Connection(amqp_url) as other:
        bound = mailbox(conn)
        first = bound.Node("same@h", channel=conn.channel()).listen()
        try:
            with pytest.warns(UserWarning, match="consumes from this mailbox queue"):
                bound.Node("same@h", channel=conn.channel()).listen().cancel()
            with pytest.raises(InconsistencyError, match="consumes from this mailbox queue"):
                mailbox(other).Node("same@h", channel=other.channel()).listen()
        finally:
            first.cancel()


def test_queue_arguments_reach_the_broker(amqp_url: str, namespace: str) -> None:
    """queue_ttl / queue_expires become x-message-ttl / x-expires on the node's queue."""
    from kombu import Connection
    from kombu.pidbox import Mailbox

    mailbox = Mailbox(namespace, type="fanout", queue_ttl=30.0, queue_expires=60.0)
    with Connection(amqp_url) as conn:
        node = mailbox(conn).Node("ttl@h", channel=conn.channel())
        consumer = node.listen()
        try:
            # The same declaration is accepted, a different one refused (406):
            # so the broker holds exactly these arguments.
            name = f"ttl@h.{namespace}.pidbox"
            declare = {"durable": False, "exclusive": True, "auto_delete": True}
            ok = conn.channel().queue_declare(
                name, arguments={"x-message-ttl": 30000, "x-expires": 60000}, **declare)
            assert ok.queue == name and ok.consumer_count == 1
            with pytest.raises(amqp.exceptions.PreconditionFailed):
                conn.channel().queue_declare(name, arguments={"x-message-ttl": 1000}, **declare)
        finally:
            consumer.cancel()
