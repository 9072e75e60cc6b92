"""kombu.pools: the global connection and producer pools."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.processes import in_forked_child
from kombu import Connection, Producer, Queue, pools
from kombu.exceptions import LimitExceeded
from kombu.pools import PoolGroup, ProducerPool
from kombu.resource import ConnectionPool, Resource
from kombu.utils.functional import lazy

URL = "memory://"


@pytest.fixture(autouse=True)
def clean_pools() -> Iterator[None]:
    """Every test starts and ends with empty global pools and the default limit."""
    pools.reset()
    pools.set_limit(10)
    yield
    pools.reset()
    pools.set_limit(10)


def receive(name: str) -> Any:
    with Connection(URL).SimpleQueue(name) as queue:
        message = queue.get(timeout=5)
        message.ack()
        return message.payload


def idle(pool: Resource) -> list[Any]:
    return [x for x in pool._resource.queue if not isinstance(x, lazy)]


# -- the groups -------------------------------------------------------------------------
def test_default_limit() -> None:
    assert pools.get_limit() == 10
    assert pools.connections[URL].limit == 10
    assert pools.producers[URL].limit == 10


def test_url_and_connection_share_a_pool() -> None:
    by_url = pools.connections[URL]
    assert isinstance(by_url, ConnectionPool)
    assert pools.connections[Connection(URL)] is by_url
    assert pools.connections[URL] is by_url
    assert pools.connections[Connection("memory://localhost:1/x")] is not by_url
    assert pools.connections["memory://localhost:1/x"] is (
        pools.connections[Connection("memory://localhost:1/x")])
    assert len(pools.connections) == 2


def test_equal_connections_share_a_pool() -> None:
    a = Connection("memory://", transport_options={"x": 1})
    b = Connection("memory://", transport_options={"x": 1})
    assert pools.connections[a] is pools.connections[b]
    assert pools.connections[a] is not pools.connections[URL]


def test_group_lookups_accept_urls() -> None:
    pool = pools.connections[URL]
    assert URL in pools.connections
    assert Connection(URL) in pools.connections
    assert "memory://other" not in pools.connections
    assert pools.connections.get(URL) is pool
    assert pools.connections.get("memory://other", 5) == 5
    assert pools.connections.pop(URL) is pool
    assert URL not in pools.connections
    assert pools.connections.pop(URL, None) is None
    with pytest.raises(KeyError):
        pools.connections.pop(URL)
    pools.connections[URL] = pool
    assert pools.connections[Connection(URL)] is pool
    del pools.connections[Connection(URL)]
    with pytest.raises(KeyError):
        del pools.connections[URL]
    assert pools.connections.setdefault(URL, pool) is pool
    assert pools.connections[URL] is pool


def test_producers_use_the_connection_pools() -> None:
    producer_pool = pools.producers[URL]
    assert isinstance(producer_pool, ProducerPool)
    assert producer_pool.connections is pools.connections[URL]


def test_concurrent_first_lookups_create_one_pool() -> None:
    url = "memory://concurrent"
    barrier = threading.Barrier(16)
    seen: list[Resource] = []

    def look() -> None:
        barrier.wait(5)
        seen.append(pools.connections[url])

    threads = [threading.Thread(target=look) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 16
    assert len({id(p) for p in seen}) == 1


def test_pool_group_needs_create() -> None:
    group = PoolGroup()
    with pytest.raises(NotImplementedError, match="must define create"):
        group[URL]


def test_custom_group() -> None:
    @pools.register_group
    class Small(PoolGroup):
        def create(self, connection: Connection, limit: int | None) -> Resource:
            return connection.Pool(limit=limit)

    try:
        group = Small(limit=2)
        assert group[URL].limit == 2
        global_group = Small(limit=pools.use_global_limit)
        assert global_group[URL].limit == pools.get_limit()
    finally:
        pools._groups.remove(Small)  # type: ignore[arg-type]


# -- connection pools ---------------------------------------------------------------------
def test_global_connection_pool(unique: Callable[..., str]) -> None:
    name = unique()
    pool = pools.connections[URL]
    with pools.connections[URL].acquire(block=True) as conn:
        assert conn._pool is pool
        with conn.SimpleQueue(name) as queue:
            queue.put({"msg": "hello"})
        assert pool._dirty == {conn}
    assert not pool._dirty
    assert receive(name) == {"msg": "hello"}


# -- producer pools -----------------------------------------------------------------------
def test_global_producer_pool_publishes(unique: Callable[..., str]) -> None:
    name = unique()
    with pools.producers[URL].acquire(block=True) as producer:
        assert isinstance(producer, Producer)
        producer.publish({"msg": "hello"}, routing_key=name, declare=[Queue(name)])
    assert receive(name) == {"msg": "hello"}


def test_producer_release_returns_its_connection() -> None:
    producer_pool = pools.producers[URL]
    connection_pool = pools.connections[URL]
    producer = producer_pool.acquire(block=True)
    conn = producer.connection
    assert connection_pool._dirty == {conn}
    producer.release()
    assert not connection_pool._dirty
    assert not producer_pool._dirty
    assert idle(connection_pool) == [conn]
    producer.release()  # twice: nothing more happens
    assert idle(producer_pool) == [producer]
    assert idle(connection_pool) == [conn]


class Counting(Producer):
    revived = 0

    def revive(self, channel: Any) -> None:
        self.revived += 1
        super().revive(channel)


def test_reacquired_producer_keeps_its_channel(unique: Callable[..., str]) -> None:
    producer_pool = ProducerPool(pools.connections[URL], limit=2, Producer=Counting)
    name = unique()
    with producer_pool.acquire(block=True) as producer:
        producer.publish("one", routing_key=name, declare=[Queue(name)])
        channel = producer.channel
        assert producer.revived == 1
    with producer_pool.acquire(block=True) as again:
        assert again is producer
        assert again.channel is channel
        assert again.revived == 1, "same connection: not revived again"
        again.publish("two", routing_key=name)
    assert receive(name) == "one"
    assert receive(name) == "two"


def test_producer_moves_to_another_connection_when_its_own_is_taken(
        unique: Callable[..., str]) -> None:
    producer_pool = ProducerPool(pools.connections[URL], limit=2, Producer=Counting)
    connection_pool = pools.connections[URL]
    name = unique()
    with producer_pool.acquire(block=True) as producer:
        assert producer.revived == 1
        first = producer.connection
        producer.publish("one", routing_key=name, declare=[Queue(name)])
    with connection_pool.acquire(block=True) as taken:
        assert taken is first
        with producer_pool.acquire(block=True) as again:
            assert again is producer
            assert again.connection is not first
            assert again.revived == 2
            again.publish("two", routing_key=name)
    assert receive(name) == "one"
    assert receive(name) == "two"


def test_producer_is_revived_when_its_connection_was_reset(unique: Callable[..., str]) -> None:
    producer_pool = ProducerPool(pools.connections[URL], limit=2, Producer=Counting)
    name = unique()
    with producer_pool.acquire(block=True) as producer:
        producer.publish("one", routing_key=name, declare=[Queue(name)])
        stale = producer.channel
    with pools.connections[URL].acquire() as conn:
        assert conn is producer.connection
        conn.collect()  # e.g. after a connection error: a new channel next time
    with producer_pool.acquire(block=True) as again:
        assert again is producer
        assert again.revived == 2
        again.publish("two", routing_key=name)
        assert again.channel is not stale
    assert receive(name) == "one"
    assert receive(name) == "two"


def test_failed_publish_replaces_the_connection(unique: Callable[..., str]) -> None:
    producer_pool = pools.producers[URL]
    connection_pool = pools.connections[URL]
    name = unique()
    with pytest.raises(RuntimeError):
        with producer_pool.acquire(block=True) as producer:
            broken = producer.connection
            broken.connect()
            raise RuntimeError("publish failed")
    assert not broken.connected
    assert not connection_pool._dirty
    assert not producer_pool._dirty
    with producer_pool.acquire(block=True) as again:
        assert again is producer
        assert again.connection is not broken
        again.publish("after", routing_key=name, declare=[Queue(name)])
    assert receive(name) == "after"


def test_producer_pool_limit() -> None:
    producer_pool = ProducerPool(pools.connections[URL], limit=2)
    a = producer_pool.acquire()
    b = producer_pool.acquire()
    assert a is not b
    assert a.connection is not b.connection
    with pytest.raises(LimitExceeded):
        producer_pool.acquire()


def test_a_producer_acquire_is_bounded_while_every_connection_is_in_use() -> None:
    """kombu waited for a connection without limit, whatever the timeout said."""
    pools.set_limit(2)
    connections = pools.connections[URL]
    held = [connections.acquire() for _ in range(2)]
    with pytest.raises(connections.PoolTimeout):
        pools.producers[URL].acquire(block=True, timeout=0.2)
    assert len(pools.producers[URL]._dirty) == 0  # the failed acquire kept no slot
    # block=False (the default) waits for a connection, as kombu does.
    releaser = threading.Timer(0.1, held.pop().release)
    releaser.start()
    producer = pools.producers[URL].acquire()
    releaser.join()
    assert producer.connection is not None
    producer.release()
    held.pop().release()


def test_a_failed_producer_acquire_leaves_other_connections_alone() -> None:
    """The producer's old connection, given back at release, may be in use by
    someone else: a failed acquire must not release it again."""
    cpool = Connection(URL).Pool(limit=1)
    ppool = ProducerPool(cpool, limit=2)
    ppool.acquire(block=True).release()
    held = cpool.acquire()
    with pytest.raises(cpool.PoolTimeout):
        ppool.acquire(block=True, timeout=0.1)
    with pytest.raises(cpool.LimitExceeded):
        cpool.acquire(block=False)  # still held: not handed out twice
    held.release()
    producer = ppool.acquire(block=True, timeout=5)
    assert producer.connection is held  # the connection came back to it
    producer.release()


def test_producer_pool_with_a_custom_producer_class(unique: Callable[..., str]) -> None:
    class Tagged(Producer):
        pass

    producer_pool = ProducerPool(pools.connections[URL], limit=1, Producer=Tagged)
    assert producer_pool.Producer is Tagged
    name = unique()
    with producer_pool.acquire() as producer:
        assert type(producer) is Tagged
        producer.publish("tagged", routing_key=name, declare=[Queue(name)])
    assert receive(name) == "tagged"


def test_unlimited_producer_pool(unique: Callable[..., str]) -> None:
    connection_pool = ConnectionPool(Connection(URL), limit=1)
    producer_pool = ProducerPool(connection_pool)
    name = unique()
    producer = producer_pool.acquire()
    producer.publish("x", routing_key=name, declare=[Queue(name)])
    producer.release()
    assert not connection_pool._dirty, "the connection went back"
    assert not producer_pool._detached
    assert producer_pool.acquire() is not producer
    assert receive(name) == "x"


def test_failed_producer_creation_returns_the_connection() -> None:
    class Broken(Producer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ValueError("cannot create")

    connection_pool = ConnectionPool(Connection(URL), limit=1)
    producer_pool = ProducerPool(connection_pool, limit=1, Producer=Broken)
    with pytest.raises(ValueError, match="cannot create"):
        producer_pool.acquire()
    assert not connection_pool._dirty
    assert producer_pool._pending == 0
    assert len(producer_pool._resource.queue) == 1


# -- limits and reset -------------------------------------------------------------------
def test_set_limit_resizes_global_pools_only() -> None:
    connection_pool = pools.connections[URL]
    producer_pool = pools.producers[URL]

    class Fixed(PoolGroup):
        def create(self, connection: Connection, limit: int | None) -> Resource:
            return connection.Pool(limit=limit)

    fixed = pools.register_group(Fixed(limit=3))
    try:
        fixed_pool = fixed[URL]
        assert pools.set_limit(100) == 100
        assert pools.get_limit() == 100
        assert connection_pool.limit == 100
        assert producer_pool.limit == 100
        assert fixed_pool.limit == 3
        assert pools.connections["memory://new"].limit == 100
    finally:
        pools._groups.remove(fixed)


def test_set_limit_refuses_to_go_below_the_resources_in_use() -> None:
    pool = pools.connections[URL]
    held = [pool.acquire() for _ in range(3)]
    with pytest.raises(RuntimeError, match="Cannot lower the pool limit to 2"):
        pools.set_limit(2)
    assert pools.get_limit() == 10
    assert pool.limit == 10
    assert pools.set_limit(3) == 3
    assert pool.limit == 3
    for conn in held:
        conn.release()


def test_set_limit_with_force() -> None:
    pool = pools.connections[URL]
    held = [pool.acquire() for _ in range(3)]
    for conn in held:
        conn.connect()
    pools.set_limit(1, force=True)
    assert pool.limit == 1
    assert not pool._dirty
    assert not any(conn.connected for conn in held)


def test_set_limit_with_ignore_errors() -> None:
    pool = pools.connections[URL]
    held = [pool.acquire() for _ in range(3)]
    pools.set_limit(1, ignore_errors=True)
    assert pool.limit == 1
    assert pool._dirty == set(held)
    for conn in held:
        conn.release()
    assert len(idle(pool)) == 1


def test_set_limit_with_disable_limit_protection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pools, "disable_limit_protection", "yes")
    pool = pools.connections[URL]
    pool.acquire()
    pool.acquire()
    pools.set_limit(1)
    assert pool.limit == 1
    assert not pool._dirty


def test_set_limit_reset_after() -> None:
    old = pools.connections[URL]
    pools.set_limit(5, reset_after=True)
    assert len(pools.connections) == 0
    with pytest.raises(RuntimeError, match="closed pool"):
        old.acquire()
    assert pools.connections[URL].limit == 5


def test_set_limit_none_means_unlimited() -> None:
    assert pools.set_limit(None) == 0
    pool = pools.connections[URL]
    assert not pool.limit
    a, b = pool.acquire(), pool.acquire()
    assert a is not b


def test_reset_collects_and_forgets(caplog: pytest.LogCaptureFixture) -> None:
    pool = pools.connections[URL]
    conn = pool.acquire()
    conn.connect()
    with pools.producers[URL].acquire(block=True):
        pass
    pools.reset()
    assert "Could not collect" not in caplog.text
    assert not conn.connected
    assert len(pools.connections) == 0
    assert len(pools.producers) == 0
    assert pools.connections[URL] is not pool


def test_reset_goes_on_when_a_pool_fails(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(Resource):
        def new(self) -> Any:
            return object()

        def force_close_all(self, close_pool: bool = True) -> None:
            raise OSError("cannot close")

    pools.connections["memory://failing"] = Failing(limit=1)
    pool = pools.connections[URL]
    conn = pool.acquire()
    conn.connect()
    pools.reset()
    assert not conn.connected
    assert "Could not collect the resources" in caplog.text


def test_module_attributes() -> None:
    assert set(pools.__all__) >= {"ProducerPool", "PoolGroup", "register_group", "connections",
                                  "producers", "get_limit", "set_limit", "reset"}
    assert isinstance(pools.connections, pools.Connections)
    assert isinstance(pools.producers, pools.Producers)
    assert pools.use_global_limit is not None


# -- fork ------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_gets_fresh_pools(unique: Callable[..., str]) -> None:
    parent_pool = pools.connections[URL]
    parent_conn = parent_pool.acquire()
    parent_conn.connect()
    name = unique()

    def check() -> None:
        assert len(pools.connections) == 0
        assert len(pools.producers) == 0
        with pools.producers[URL].acquire(block=True, timeout=5) as producer:
            assert producer.connection is not parent_conn
            producer.publish("from child", routing_key=name, declare=[Queue(name)])
        assert receive(name) == "from child"
        assert parent_conn.connected

    in_forked_child(check)
    assert pools.connections[URL] is parent_pool
    assert parent_pool._dirty == {parent_conn}
