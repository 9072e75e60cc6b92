"""kombu.mixins: ConsumerMixin and ConsumerProducerMixin on the memory transport."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import unique_name, wait_until
from kombu import Connection, Exchange, Producer, Queue
from kombu.exceptions import ConnectionError, OperationalError
from kombu.mixins import ConsumerMixin, ConsumerProducerMixin
from kombu.utils.limits import TokenBucket

URL = "memory://"


class Worker(ConsumerMixin):
    def __init__(self, connection: Connection, queue: Queue, stop_after: int | None = None):
        self.connection = connection
        self.queue = queue
        self.stop_after = stop_after
        self.got: list[Any] = []
        self.events: list[str] = []

    def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
        self.events.append("get_consumers")
        return [Consumer(queues=[self.queue], callbacks=[self.on_message], accept=["json"])]

    def on_message(self, body: Any, message: Any) -> None:
        self.got.append(body)
        message.ack()
        if self.stop_after is not None and len(self.got) >= self.stop_after:
            self.should_stop = True

    def on_connection_revived(self) -> None:
        self.events.append("revived")

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any,
                         **kwargs: Any) -> None:
        self.events.append(f"ready:{sorted(kwargs)}")

    def on_consume_end(self, connection: Any, channel: Any) -> None:
        self.events.append("end")

    @contextmanager
    def extra_context(self, connection: Any, channel: Any) -> Iterator[None]:
        self.events.append("extra-enter")
        yield
        self.events.append("extra-exit")


@pytest.fixture
def queue() -> Queue:
    name = unique_name("mix")
    return Queue(name, Exchange(name, "direct"), routing_key=name)


def publish(conn: Connection, queue: Queue, bodies: list[Any], **kwargs: Any) -> None:
    producer = Producer(conn.channel())
    for body in bodies:
        producer.publish(body, exchange=queue.exchange, routing_key=queue.routing_key,
                         declare=[queue], serializer="json", **kwargs)


def test_consume_with_limit_and_callbacks(queue: Queue) -> None:
    with Connection(URL) as conn:
        publish(conn, queue, [1, 2, 3])
        worker = Worker(conn, queue)
        iterations: list[int] = []
        worker.on_iteration = lambda: iterations.append(1)  # type: ignore[method-assign]
        for _ in worker.consume(limit=3, timeout=5, safety_interval=0.2, tag="x"):
            pass
        assert worker.got == [1, 2, 3]
        assert worker.events == ["revived", "get_consumers", "extra-enter", "ready:['tag']",
                                 "extra-exit", "end"]
        assert len(iterations) == 3


def test_consume_times_out_when_idle(queue: Queue) -> None:
    with Connection(URL) as conn:
        worker = Worker(conn, queue)
        with pytest.raises(socket.timeout):
            for _ in worker.consume(timeout=0.3, safety_interval=0.1):
                pass
        assert worker.events[-1] == "end"  # consumers cancelled, hooks ran


def test_run_until_should_stop(queue: Queue) -> None:
    with Connection(URL) as conn:
        publish(conn, queue, list(range(5)))
        worker = Worker(conn, queue, stop_after=5)
        thread = threading.Thread(target=worker.run, kwargs={"safety_interval": 0.1})
        thread.start()
        thread.join(20)
        assert not thread.is_alive()
        assert sorted(worker.got) == [0, 1, 2, 3, 4]


def test_should_stop_from_outside(queue: Queue) -> None:
    with Connection(URL) as conn:
        worker = Worker(conn, queue)
        thread = threading.Thread(target=worker.run, kwargs={"safety_interval": 0.1})
        thread.start()
        wait_until(lambda: "end" in worker.events or worker.events[-1:] == ["ready:[]"],
                   timeout=10, message="worker consuming")
        publish(conn, queue, ["late"])
        wait_until(lambda: worker.got == ["late"], timeout=10, message="message consumed")
        worker.should_stop = True
        thread.join(20)
        assert not thread.is_alive()
        assert worker.events[-1] == "end"


def test_run_restarts_after_a_connection_error(queue: Queue,
                                               caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(Worker):
        attempts = 0

        def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
            self.attempts += 1
            if self.attempts == 1:
                raise ConnectionError("broker went away")
            return super().get_consumers(Consumer, channel)

    with Connection(URL) as conn:
        publish(conn, queue, ["after"])
        worker = Flaky(conn, queue, stop_after=1)
        assert any(issubclass(ConnectionError, e) for e in worker.connection_errors)
        thread = threading.Thread(target=worker.run, kwargs={"safety_interval": 0.1})
        with caplog.at_level(logging.WARNING, logger="kombu.mixins"):
            thread.start()
            thread.join(20)
        assert not thread.is_alive()
        assert worker.attempts == 2 and worker.got == ["after"]
        assert "Connection to broker lost" in caplog.text
        # the failed attempt still ran its cleanup hook
        assert worker.events.count("end") == 2


def test_restart_limit_is_a_token_bucket(queue: Queue) -> None:
    with Connection(URL) as conn:
        worker = Worker(conn, queue)
        assert isinstance(worker.restart_limit, TokenBucket)
        assert worker.restart_limit is worker.restart_limit
        assert worker.restart_limit.fill_rate == 1
        assert worker.channel_errors == tuple(conn.channel_errors)
        assert worker.connection_errors == tuple(conn.connection_errors)


def test_run_sleeps_while_restarts_are_used_up(queue: Queue) -> None:
    with Connection(URL) as conn:
        publish(conn, queue, ["x"])
        worker = Worker(conn, queue, stop_after=1)
        worker.restart_limit = TokenBucket(fill_rate=20, capacity=1)
        worker.restart_limit.can_consume(1)  # empty: run must wait for a token first
        thread = threading.Thread(target=worker.run, kwargs={"safety_interval": 0.1})
        thread.start()
        thread.join(20)
        assert not thread.is_alive() and worker.got == ["x"]


def test_decode_error_is_logged_and_acked(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    with Connection(URL) as conn:
        producer = Producer(conn.channel())
        producer.publish("{not json", exchange=queue.exchange, routing_key=queue.routing_key,
                         declare=[queue], serializer=None, content_type="application/json",
                         content_encoding="utf-8")
        publish(conn, queue, ["good"])
        worker = Worker(conn, queue)
        with caplog.at_level(logging.ERROR, logger="kombu.mixins"):
            for _ in worker.consume(limit=2, timeout=5, safety_interval=0.2):
                pass
        assert worker.got == ["good"]
        assert "Can't decode message body" in caplog.text
        assert queue(conn.channel()).queue_declare(passive=True).message_count == 0


def test_connect_max_retries_and_errback() -> None:
    class Dead(ConsumerMixin):
        connect_max_retries = 1

        def __init__(self) -> None:
            self.connection = Connection("memory://", transport_options={})
            self.errors: list[Any] = []

        def create_connection(self) -> Connection:
            # a connection that cannot connect: a port nothing listens on
            from helpers.sockets import free_port

            return Connection(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)

        def on_connection_error(self, exc: BaseException, interval: float) -> None:
            self.errors.append((exc, interval))

        def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
            raise AssertionError("never connected")

    pytest.importorskip("redis")
    worker = Dead()
    with pytest.raises(OperationalError), worker.establish_connection():
        pass
    assert len(worker.errors) == 1


def test_get_consumers_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError):
        ConsumerMixin().get_consumers(None, None)  # type: ignore[arg-type]


def test_consumer_producer_mixin_replies(queue: Queue) -> None:
    reply = Queue(unique_name("reply"), routing_key=unique_name("rk"))

    class Echo(ConsumerProducerMixin):
        def __init__(self, connection: Connection) -> None:
            self.connection = connection
            self.producer_conns: list[Connection] = []

        def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
            return [Consumer(queues=[queue], on_message=self.handle, accept=["json"])]

        def handle(self, message: Any) -> None:
            self.producer_conns.append(self.producer_connection)
            self.producer.publish({"echo": message.payload}, exchange="",
                                  routing_key=reply.name, declare=[reply], serializer="json")
            message.ack()

    with Connection(URL) as conn:
        publish(conn, queue, ["a", "b"])
        echo = Echo(conn)
        for _ in echo.consume(limit=2, timeout=5, safety_interval=0.2):
            pass
        # one publishing connection, not the consuming one, closed at the end
        assert len(echo.producer_conns) == 2
        assert echo.producer_conns[0] is echo.producer_conns[1]
        assert echo._producer_connection is None
        got: list[Any] = []
        bound = reply(conn.channel())
        for _ in range(2):
            message = bound.get(no_ack=True, accept=["json"])
            assert message is not None
            got.append(message.payload)
        assert got == [{"echo": "a"}, {"echo": "b"}]
