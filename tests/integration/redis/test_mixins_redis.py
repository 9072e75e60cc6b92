"""kombu.mixins on a real Redis: consuming, and reconnecting after the connection is cut."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import require, wait_until
from helpers.faultproxy import FaultProxy

redis = pytest.importorskip("redis", reason="kombu-redis needs redis-py (pip install redis)")

DB = "/4"


@pytest.fixture
def qname() -> Iterator[str]:
    require("redis")
    name = f"celerymods-mix-{uuid.uuid4().hex[:10]}"
    yield name
    client: Any = redis.Redis.from_url(f"redis://127.0.0.1:6379{DB}")
    try:
        for key in client.scan_iter(match=f"*{name}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    require("redis")
    with FaultProxy(("127.0.0.1", 6379)) as p:
        yield p


def test_consumer_mixin_survives_a_cut_connection(qname: str, proxy: FaultProxy) -> None:
    from kombu import Connection, Producer, Queue
    from kombu.mixins import ConsumerMixin

    queue = Queue(qname, routing_key=qname)

    class Worker(ConsumerMixin):
        def __init__(self, connection: Connection) -> None:
            self.connection = connection
            self.got: list[Any] = []
            self.revived = 0

        def on_connection_revived(self) -> None:
            self.revived += 1

        def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
            return [Consumer(queues=[queue], callbacks=[self.on_message], accept=["json"])]

        def on_message(self, body: Any, message: Any) -> None:
            self.got.append(body)
            message.ack()

    direct = f"redis://127.0.0.1:6379{DB}"
    worker = Worker(Connection(proxy.url("redis", DB), connect_timeout=2))
    thread = threading.Thread(target=worker.run, kwargs={"safety_interval": 0.2}, daemon=True)
    with Connection(direct) as publisher:
        producer = Producer(publisher.channel())
        producer.publish({"n": 1}, routing_key=qname, declare=[queue], serializer="json")
        thread.start()
        try:
            wait_until(lambda: worker.got == [{"n": 1}], timeout=15, message="first message")
            proxy.cut_all()
            wait_until(lambda: worker.revived >= 2, timeout=20, message="reconnected")
            producer.publish({"n": 2}, routing_key=qname, serializer="json")
            wait_until(lambda: {"n": 2} in worker.got, timeout=20,
                       message="message after the cut")
        finally:
            worker.should_stop = True
            thread.join(20)
        assert not thread.is_alive()
        assert worker.got.count({"n": 1}) >= 1 and worker.got[-1] == {"n": 2}


def test_connect_max_retries_gives_up(proxy: FaultProxy) -> None:
    from kombu import Connection
    from kombu.exceptions import OperationalError
    from kombu.mixins import ConsumerMixin

    proxy.refuse()
    errors: list[Any] = []

    class Worker(ConsumerMixin):
        connect_max_retries = 2

        def __init__(self) -> None:
            self.connection = Connection(proxy.url("redis", DB), connect_timeout=1)

        def on_connection_error(self, exc: BaseException, interval: float) -> None:
            errors.append(exc)

    with pytest.raises(OperationalError), Worker().establish_connection():
        pass
    assert len(errors) == 2
