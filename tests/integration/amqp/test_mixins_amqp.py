"""kombu.mixins on a real RabbitMQ: an RPC server built on ConsumerProducerMixin."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable

import pytest
from helpers import wait_until

pytest.importorskip("amqp", reason="kombu-pyamqp needs the amqp library (pip install amqp)")


def test_rpc_server_replies_on_its_own_connection(
        amqp_url: str, names: Callable[[str], str]) -> None:
    from kombu import Connection, Consumer, Producer, Queue
    from kombu.mixins import ConsumerProducerMixin

    requests = Queue(names("celerymods-rpc"), routing_key="rpc")
    replies = Queue(names("celerymods-replies"), exclusive=False, auto_delete=True)

    class Server(ConsumerProducerMixin):
        def __init__(self, connection: Connection) -> None:
            self.connection = connection
            self.producer_ids: set[int] = set()
            self.ready = threading.Event()

        def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
            return [Consumer(queues=[requests], on_message=self.on_request, accept=["json"],
                             prefetch_count=1)]

        def on_consume_ready(self, connection: Any, channel: Any, consumers: Any,
                             **kwargs: Any) -> None:
            self.ready.set()

        def on_request(self, message: Any) -> None:
            self.producer_ids.add(id(self.producer_connection))
            self.producer.publish({"result": message.payload["x"] * 2}, exchange="",
                                  routing_key=message.properties["reply_to"],
                                  correlation_id=message.properties["correlation_id"],
                                  serializer="json", retry=True)
            message.ack()

    server = Server(Connection(amqp_url))
    thread = threading.Thread(target=server.run, kwargs={"safety_interval": 0.2}, daemon=True)
    thread.start()
    got: dict[str, Any] = {}
    try:
        assert server.ready.wait(15), "server did not start"
        with Connection(amqp_url) as client:
            channel = client.channel()
            with Consumer(channel, [replies], accept=["json"], no_ack=True,
                          callbacks=[lambda body, m: got.__setitem__(
                              m.properties["correlation_id"], body)]):
                producer = Producer(channel)
                for i in range(3):
                    producer.publish({"x": i}, routing_key=requests.name, declare=[requests],
                                     reply_to=replies.name, correlation_id=f"c{i}",
                                     serializer="json")
                deadline = time.monotonic() + 15
                while len(got) < 3 and time.monotonic() < deadline:
                    try:
                        client.drain_events(timeout=0.5)
                    except socket.timeout:
                        pass
    finally:
        server.should_stop = True
        thread.join(20)
    assert not thread.is_alive()
    assert got == {"c0": {"result": 0}, "c1": {"result": 2}, "c2": {"result": 4}}
    assert len(server.producer_ids) == 1  # one publishing connection for all replies
    wait_until(lambda: server._producer_connection is None, timeout=5,
               message="producer connection closed when consuming ended")
