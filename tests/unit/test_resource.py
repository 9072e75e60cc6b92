"""kombu.resource: the generic pool, ConnectionPool and ChannelPool."""

from __future__ import annotations

import os
import pickle
import threading
import time
from itertools import count
from typing import Any, Callable

import kombu.resource as resource_module
import pytest
from helpers.processes import in_forked_child
from kombu import Connection, Queue
from kombu.exceptions import (
    ChannelLimitExceeded,
    ConnectionLimitExceeded,
    LimitExceeded,
    PoolTimeout,
)
from kombu.resource import ChannelPool, ConnectionPool, Resource
from kombu.utils.functional import lazy

#: Slack allowed on top of a timeout on a busy test machine, in seconds.
SLACK = 2.0

_ids = count(1)


class Thing:
    """A resource that records what the pool did to it."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.closed = 0
        self.collected = 0

    def close(self) -> None:
        self.closed += 1

    def __enter__(self) -> Thing:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()  # type: ignore[attr-defined]  (set by the pool)

    def __repr__(self) -> str:
        return f"<Thing {self.id}>"


class Pool(Resource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.created = 0
        super().__init__(*args, **kwargs)

    def new(self) -> Thing:
        self.created += 1
        return Thing()

    def collect_resource(self, resource: Any) -> None:
        if isinstance(resource, Thing):
            resource.collected += 1


def idle(pool: Resource) -> list[Any]:
    """The free resources of ``pool``, bottom first (placeholders left out).

    (``in`` and ``==`` on the queue itself would evaluate the placeholders.)
    """
    return [x for x in pool._resource.queue if not isinstance(x, lazy)]


def holds(pool: Resource, resource: Any) -> bool:
    return any(x is resource for x in pool._resource.queue)


def run_threads(target: Callable[[], None], n: int, timeout: float) -> None:
    """Run ``target`` in ``n`` threads; fail if any is still running after ``timeout``."""
    threads = [threading.Thread(target=target, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "threads deadlocked"


# -- unlimited pools ------------------------------------------------------------
@pytest.mark.parametrize("limit", [None, 0])
def test_unlimited_pool_creates_and_closes(limit: int | None) -> None:
    pool = Pool(limit=limit)
    a, b = pool.acquire(), pool.acquire()
    assert a is not b
    assert pool.created == 2
    assert pool._resource.qsize() == 0
    a.release()
    assert a.closed == 1
    a.release()
    pool.release(a)
    assert a.closed == 1, "a double release closes only once"
    pool.release(b)
    assert b.closed == 1
    assert not pool._dirty


# -- limits -------------------------------------------------------------------------
def test_slots_are_lazy_placeholders() -> None:
    pool = Pool(limit=3)
    assert pool.created == 0
    assert len(pool._resource.queue) == 3
    assert all(isinstance(p, lazy) for p in pool._resource.queue)
    thing = pool.acquire()
    assert isinstance(thing, Thing)
    assert pool.created == 1
    assert pool._dirty == {thing}
    assert len(pool._resource.queue) == 2


def test_non_blocking_acquire_raises_limit_exceeded() -> None:
    pool = Pool(limit=2)
    pool.acquire()
    pool.acquire()
    with pytest.raises(LimitExceeded, match="All 2 resources .* are in use") as info:
        pool.acquire()
    assert not isinstance(info.value, PoolTimeout)
    assert pool.created == 2


def test_blocking_acquire_times_out_with_pool_timeout() -> None:
    pool = Pool(limit=1)
    pool.acquire()
    start = time.monotonic()
    with pytest.raises(PoolTimeout, match="within 0.2 s") as info:
        pool.acquire(block=True, timeout=0.2)
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 0.2 + SLACK
    assert isinstance(info.value, LimitExceeded)
    assert isinstance(info.value, TimeoutError)


def test_blocking_acquire_with_zero_timeout_fails_at_once() -> None:
    pool = Pool(limit=1)
    pool.acquire()
    start = time.monotonic()
    with pytest.raises(PoolTimeout):
        pool.acquire(block=True, timeout=0)
    assert time.monotonic() - start < SLACK


def test_negative_timeout_is_rejected() -> None:
    pool = Pool(limit=1)
    pool.acquire()
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        pool.acquire(block=True, timeout=-1)


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_blocking_acquire_gets_the_released_resource(timeout: float | None) -> None:
    pool = Pool(limit=1)
    held = pool.acquire()
    timer = threading.Timer(0.1, held.release)
    timer.start()
    try:
        start = time.monotonic()
        got = pool.acquire(block=True, timeout=timeout)
        assert got is held
        assert time.monotonic() - start > 0.05, "it waited for the release"
    finally:
        timer.join(5)


def test_blocking_acquire_gets_a_slot_freed_by_replace() -> None:
    pool = Pool(limit=1)
    held = pool.acquire()
    timer = threading.Timer(0.1, pool.replace, (held,))
    timer.start()
    try:
        got = pool.acquire(block=True, timeout=5)
    finally:
        timer.join(5)
    assert got is not held
    assert held.closed == 1


def _start_waiter(pool: Resource, got: list[Any], name: str) -> threading.Thread:
    """A thread blocked in ``pool.acquire(block=True)``; appends ``(name, item)``."""
    def wait() -> None:
        got.append((name, pool.acquire(block=True, timeout=5)))

    waiters_before = len(pool._waiters)
    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while len(pool._waiters) == waiters_before and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(pool._waiters) == waiters_before + 1, "the thread should be waiting"
    return thread


def test_waiters_are_served_first_come_first_served() -> None:
    pool = Pool(limit=1)
    held = pool.acquire()
    got: list[Any] = []
    threads = [_start_waiter(pool, got, name) for name in ("first", "second", "third")]
    time.sleep(resource_module.STARVATION_SECONDS * 2)
    # They have waited long enough: the releasing thread cannot take the
    # resource back ahead of them, and they get it in turn.
    held.release()
    with pytest.raises(LimitExceeded):
        pool.acquire()
    for expected in ("first", "second", "third"):
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.001)
        name, item = got.pop()
        assert (name, item) == (expected, held)
        item.release()
    for thread in threads:
        thread.join(5)
    assert pool.created == 1
    assert idle(pool) == [held]


def test_a_waiter_that_times_out_leaves_the_queue() -> None:
    pool = Pool(limit=1)
    held = pool.acquire()
    with pytest.raises(pool.PoolTimeout):
        pool.acquire(block=True, timeout=0.05)
    assert not pool._waiters
    held.release()  # nobody is waiting: back into the pool
    assert idle(pool) == [held]


class GatedPrepare(Pool):
    """The first prepare waits for ``gate`` and then fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        super().__init__(*args, **kwargs)

    def prepare(self, resource: Any) -> Any:
        if not self.entered.is_set():
            self.entered.set()
            self.gate.wait(5)
            raise OSError("first prepare fails")
        return super().prepare(resource)


def test_a_failed_create_passes_its_slot_to_a_waiter() -> None:
    pool = GatedPrepare(limit=1)
    errors: list[BaseException] = []

    def first() -> None:
        try:
            pool.acquire()
        except OSError as exc:
            errors.append(exc)

    creator = threading.Thread(target=first, daemon=True)
    creator.start()
    assert pool.entered.wait(5)
    got: list[Any] = []
    waiter = _start_waiter(pool, got, "waiter")  # the only slot is being created
    pool.gate.set()
    creator.join(5)
    waiter.join(5)
    assert len(errors) == 1
    assert [name for name, _ in got] == ["waiter"]
    assert isinstance(got[0][1], Thing)
    assert pool._pending == 0 and len(pool._dirty) == 1


@pytest.mark.parametrize("limit", [True, 1.5, "3"])
def test_limit_must_be_an_int(limit: Any) -> None:
    with pytest.raises(TypeError, match="must be an int or None"):
        Pool(limit=limit)


def test_limit_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        Pool(limit=-1)


def test_base_resource_needs_new() -> None:
    with pytest.raises(NotImplementedError, match="must define new"):
        Resource(limit=1).acquire()


# -- reuse and release ------------------------------------------------------------
def test_lifo_reuse() -> None:
    pool = Pool(limit=3)
    a, b, c = pool.acquire(), pool.acquire(), pool.acquire()
    a.release()
    c.release()
    b.release()
    assert [pool.acquire(), pool.acquire(), pool.acquire()] == [b, c, a]
    assert pool.created == 3


def test_idle_resources_are_reused_before_new_ones_are_created() -> None:
    pool = Pool(limit=5)
    a = pool.acquire()
    a.release()
    for _ in range(3):
        x = pool.acquire()
        assert x is a
        x.release()
    assert pool.created == 1


def test_release_keeps_the_resource_open() -> None:
    pool = Pool(limit=2)
    a = pool.acquire()
    a.release()
    assert a.closed == 0
    assert holds(pool, a)


def test_double_release_does_not_duplicate() -> None:
    pool = Pool(limit=2)
    a = pool.acquire()
    a.release()
    a.release()
    pool.release(a)
    assert idle(pool).count(a) == 1
    assert a.closed == 0
    first, second = pool.acquire(), pool.acquire()
    assert first is a
    assert second is not a


def test_release_of_a_foreign_resource_is_ignored() -> None:
    pool = Pool(limit=1)
    stranger = Thing()
    pool.release(stranger)
    assert not holds(pool, stranger)
    assert stranger.closed == 0


def test_with_block_releases_on_exception() -> None:
    pool = Pool(limit=1)
    with pytest.raises(KeyError):
        with pool.acquire() as thing:
            raise KeyError("boom")
    assert holds(pool, thing)
    assert not pool._dirty
    assert pool.acquire() is thing


def test_release_binding_is_set_once_per_resource() -> None:
    pool = Pool(limit=1)
    thing = pool.acquire()
    binding = thing.release
    thing.release()
    assert pool.acquire() is thing
    assert thing.release is binding


def test_replace_closes_and_frees_the_slot() -> None:
    pool = Pool(limit=1)
    a = pool.acquire()
    pool.replace(a)
    assert a.closed == 1
    b = pool.acquire()
    assert b is not a
    assert pool.created == 2
    a.release()  # the replaced resource no longer belongs to the pool
    assert not holds(pool, a)
    with pytest.raises(LimitExceeded):
        pool.acquire()


class FailingPrepare(Pool):
    fail = True

    def prepare(self, resource: Any) -> Any:
        resource = super().prepare(resource)
        if self.fail:
            raise OSError("cannot prepare")
        return resource


def test_failed_prepare_of_a_placeholder_keeps_the_slot() -> None:
    pool = FailingPrepare(limit=1)
    with pytest.raises(OSError, match="cannot prepare"):
        pool.acquire()
    assert len(pool._resource.queue) == 1
    assert pool._pending == 0
    pool.fail = False
    assert isinstance(pool.acquire(), Thing)


def test_failed_prepare_of_a_resource_releases_it() -> None:
    pool = FailingPrepare(limit=1)
    pool.fail = False
    thing = pool.acquire()
    thing.release()
    pool.fail = True
    with pytest.raises(OSError):
        pool.acquire()
    assert idle(pool) == [thing]
    assert not pool._dirty


class Swapping(Pool):
    def prepare(self, resource: Any) -> Any:
        super().prepare(resource)
        return Thing()


def test_prepare_may_return_another_object() -> None:
    pool = Swapping(limit=1)
    pool.acquire().release()
    other = pool.acquire()
    assert pool._dirty == {other}
    other.release()
    assert idle(pool) == [other]


# -- resize ---------------------------------------------------------------------------
def test_grow() -> None:
    pool = Pool(limit=1)
    a = pool.acquire()
    pool.limit = 3
    assert pool.limit == 3
    b, c = pool.acquire(), pool.acquire()
    assert len({a, b, c}) == 3
    with pytest.raises(LimitExceeded):
        pool.acquire()


def test_grow_wakes_waiters() -> None:
    pool = Pool(limit=1)
    pool.acquire()
    timer = threading.Timer(0.1, pool.resize, (2,))
    timer.start()
    try:
        assert isinstance(pool.acquire(block=True, timeout=5), Thing)
    finally:
        timer.join(5)


def test_shrink_drops_least_recently_used_idle_resources() -> None:
    pool = Pool(limit=4)
    things = [pool.acquire() for _ in range(4)]
    for thing in things:
        thing.release()
    pool.resize(2)
    assert idle(pool) == things[2:]
    assert [t.collected for t in things] == [1, 1, 0, 0]


def test_shrink_below_in_use_raises() -> None:
    pool = Pool(limit=4)
    held = [pool.acquire() for _ in range(3)]
    pool.resize(3)  # not below the number in use: fine (kombu refuses)
    with pytest.raises(RuntimeError, match="Cannot shrink .* to 2: 3 resources are in use"):
        pool.resize(2)
    assert pool.limit == 3
    assert pool._dirty == set(held)


def test_shrink_with_force_collects_resources_in_use() -> None:
    pool = Pool(limit=3)
    held = [pool.acquire() for _ in range(3)]
    pool.resize(1, force=True)
    assert pool.limit == 1
    assert [t.collected for t in held] == [1, 1, 1]
    assert not pool._dirty
    held[0].release()  # forgotten: not taken back
    assert not holds(pool, held[0])
    fresh = pool.acquire()
    assert fresh not in held
    with pytest.raises(LimitExceeded):
        pool.acquire()


def test_shrink_with_ignore_errors_closes_extra_resources_on_release() -> None:
    pool = Pool(limit=3)
    held = [pool.acquire() for _ in range(3)]
    pool.resize(1, ignore_errors=True)
    assert pool.limit == 1
    held[0].release()
    held[1].release()
    assert [t.closed for t in held] == [1, 1, 0]
    held[2].release()
    assert held[2].closed == 0
    assert idle(pool) == [held[2]]


def test_reset_collects_everything() -> None:
    pool = Pool(limit=2)
    a = pool.acquire()
    b = pool.acquire()
    b.release()
    pool.resize(2, reset=True)
    assert (a.collected, b.collected) == (1, 1)
    assert not pool._dirty


def test_to_unlimited_and_back() -> None:
    pool = Pool(limit=2)
    a = pool.acquire()
    idle = pool.acquire()
    idle.release()
    pool.limit = None
    assert idle.collected == 1
    assert pool._resource.qsize() == 0
    b = pool.acquire()
    a.release()
    assert a.closed == 1
    pool.limit = 1
    with pytest.raises(LimitExceeded):
        pool.acquire()  # b is still in use and counted
    b.release()
    assert pool.acquire() is b


# -- force_close_all ------------------------------------------------------------------
def test_force_close_all_closes_the_pool() -> None:
    pool = Pool(limit=2)
    a = pool.acquire()
    b = pool.acquire()
    b.release()
    pool.force_close_all()
    assert (a.collected, b.collected) == (1, 1)
    with pytest.raises(RuntimeError, match="acquire\\(\\) on a closed pool"):
        pool.acquire()
    pool.force_close_all()  # a second call does nothing
    assert (a.collected, b.collected) == (1, 1)


def test_force_close_all_without_closing_the_pool() -> None:
    pool = Pool(limit=1)
    a = pool.acquire()
    pool.force_close_all(close_pool=False)
    b = pool.acquire()
    assert b is not a
    a.release()
    assert pool._dirty == {b}


def test_force_close_all_wakes_waiters() -> None:
    pool = Pool(limit=1)
    pool.acquire()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            pool.acquire(block=True, timeout=10)
        except BaseException as exc:  # noqa: BLE001  (recorded for the assertion)
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)
    pool.force_close_all()
    waiter.join(5)
    assert not waiter.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)


class BadCollect(Pool):
    def collect_resource(self, resource: Any) -> None:
        super().collect_resource(resource)
        if isinstance(resource, Thing) and resource.id % 2:
            raise OSError(f"cannot collect {resource.id}")


def test_force_close_all_collects_everything_before_raising() -> None:
    pool = BadCollect(limit=4)
    things = [pool.acquire() for _ in range(4)]
    with pytest.raises(OSError, match="cannot collect"):
        pool.force_close_all()
    assert [t.collected for t in things] == [1, 1, 1, 1]


# -- threads --------------------------------------------------------------------------
@pytest.mark.slow
def test_many_threads_never_exceed_the_limit() -> None:
    limit = 5
    pool = Pool(limit=limit)
    lock = threading.Lock()
    state = {"in_use": 0, "max": 0, "ops": 0, "timeouts": 0, "late": 0}
    stop = time.monotonic() + 2.0
    timeout = 0.05

    def work() -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            start = time.monotonic()
            try:
                if n % 3:
                    thing = pool.acquire(block=True, timeout=timeout)
                else:
                    thing = pool.acquire()
            except LimitExceeded:
                with lock:
                    state["timeouts"] += 1
                    state["late"] += time.monotonic() - start > timeout + SLACK
                continue
            with lock:
                state["late"] += time.monotonic() - start > timeout + SLACK
                state["in_use"] += 1
                state["max"] = max(state["max"], state["in_use"])
                state["ops"] += 1
            assert not holds(pool, thing)
            with lock:
                state["in_use"] -= 1
            thing.release()

    run_threads(work, 64, timeout=30)
    assert 0 < state["max"] <= limit
    assert state["ops"] > 100
    assert state["late"] == 0
    assert pool.created <= limit
    assert not pool._dirty
    assert pool._pending == 0
    assert len(pool._resource.queue) == limit


@pytest.mark.slow
def test_many_threads_each_get_a_distinct_resource() -> None:
    pool = Pool(limit=8)
    owners: dict[int, int] = {}
    lock = threading.Lock()
    clashes = []
    stop = time.monotonic() + 1.0

    def work() -> None:
        me = threading.get_ident()
        while time.monotonic() < stop:
            try:
                thing = pool.acquire(block=True, timeout=0.5)
            except PoolTimeout:
                continue
            with lock:
                if thing.id in owners:
                    clashes.append(thing.id)
                owners[thing.id] = me
            with lock:
                del owners[thing.id]
            thing.release()

    run_threads(work, 32, timeout=30)
    assert clashes == []


# -- fork -------------------------------------------------------------------------------
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
def test_child_forgets_the_parents_resources() -> None:
    pool = Pool(limit=2)
    in_use = pool.acquire()
    idle = pool.acquire()
    idle.release()
    parents = {in_use.id, idle.id}

    def check() -> None:
        assert not pool._dirty
        fresh = [pool.acquire(), pool.acquire()]
        assert not parents & {t.id for t in fresh}
        # forgotten, neither closed nor collected
        assert (in_use.closed, in_use.collected, idle.closed, idle.collected) == (0, 0, 0, 0)
        in_use.release()
        assert not holds(pool, in_use)

    in_forked_child(check)
    # the parent still has its own
    assert pool._dirty == {in_use}
    assert pool.acquire() is idle


@needs_fork
def test_child_does_not_deadlock_on_a_mutex_held_at_fork() -> None:
    pool = Pool(limit=1)
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with pool._resource.mutex:
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        in_forked_child(lambda: pool.acquire(block=True, timeout=5).release())
    finally:
        done.set()
        holder.join(5)


@needs_fork
def test_close_after_fork_false_keeps_the_resources() -> None:
    pool = Pool(limit=1, close_after_fork=False)
    thing = pool.acquire()
    thing.release()

    def check() -> None:
        assert pool.acquire() is thing

    in_forked_child(check)


# -- ConnectionPool ---------------------------------------------------------------------
@pytest.fixture
def connection() -> Connection:
    return Connection("memory://")


def test_connection_pool_hands_out_lazy_clones(connection: Connection) -> None:
    pool = connection.Pool(limit=2)
    assert isinstance(pool, ConnectionPool)
    assert pool.connection is connection
    conn = pool.acquire()
    assert conn is not connection
    assert conn.__eqhash__() == connection.__eqhash__()
    assert not conn.connected
    assert conn._pool is pool


def test_connection_release_returns_it_open(connection: Connection, unique: Callable[..., str]
                                            ) -> None:
    pool = connection.Pool(limit=2)
    name = unique()
    with pool.acquire() as conn:
        with conn.SimpleQueue(name) as queue:
            queue.put("hello")
        assert conn.connected
    assert conn.connected, "release keeps the connection open"
    assert pool.acquire() is conn
    conn.release()
    with connection.SimpleQueue(name) as queue:
        assert queue.get(timeout=5).payload == "hello"


def test_connection_pool_limit_errors(connection: Connection) -> None:
    pool = ConnectionPool(connection, limit=1)
    pool.acquire()
    with pytest.raises(ConnectionLimitExceeded):
        pool.acquire()
    with pytest.raises(ConnectionLimitExceeded) as info:
        pool.acquire(block=True, timeout=0.05)
    assert isinstance(info.value, PoolTimeout)
    assert isinstance(info.value, TimeoutError)


def test_pool_timeouts_pickle() -> None:
    for pool_cls in (Pool, ConnectionPool, ChannelPool):
        exc = pool_cls.PoolTimeout("waited too long")
        copy = pickle.loads(pickle.dumps(exc))
        assert type(copy) is type(exc)
        assert str(copy) == "waited too long"


def test_connection_pool_replace_closes(connection: Connection) -> None:
    pool = connection.Pool(limit=1)
    conn = pool.acquire()
    conn.connect()
    pool.replace(conn)
    assert not conn.connected
    assert pool.acquire() is not conn


def test_connection_pool_collects_on_force_close_all(connection: Connection) -> None:
    pool = connection.Pool(limit=2)
    conn = pool.acquire()
    conn.connect()
    pool.force_close_all()
    assert not conn.connected


def test_unlimited_connection_pool_closes_on_release(connection: Connection) -> None:
    pool = connection.Pool()
    conn = pool.acquire()
    conn.connect()
    assert conn._pool is pool
    conn.release()
    assert not conn.connected


def test_acquire_channel(connection: Connection, unique: Callable[..., str]) -> None:
    pool = connection.Pool(limit=1)
    name = unique()
    with pool.acquire_channel(block=True) as (conn, channel):
        assert channel is conn.default_channel
        Queue(name, channel=channel).declare()
        conn.Producer(channel).publish("x", routing_key=name)
    assert not pool._dirty
    with connection.SimpleQueue(name) as queue:
        assert queue.get(timeout=5).payload == "x"


@needs_fork
def test_connection_pool_child_gets_a_new_connection(connection: Connection,
                                                     unique: Callable[..., str]) -> None:
    pool = connection.Pool(limit=1)
    parent_conn = pool.acquire()
    parent_conn.connect()
    parent_conn.release()
    name = unique()

    def check() -> None:
        conn = pool.acquire()
        assert conn is not parent_conn
        assert parent_conn.connected, "the parent's connection is not closed"
        with conn.SimpleQueue(name) as queue:
            queue.put("child")
            assert queue.get(timeout=5).payload == "child"

    in_forked_child(check)
    assert pool.acquire() is parent_conn


# -- ChannelPool --------------------------------------------------------------------------
def test_channel_pool(connection: Connection, unique: Callable[..., str]) -> None:
    pool = connection.ChannelPool(limit=2)
    assert isinstance(pool, ChannelPool)
    assert not connection.connected, "channels are created on first acquire"
    channel = pool.acquire()
    assert connection.connected
    name = unique()
    Queue(name, channel=channel).declare()
    channel.release()
    assert pool.acquire() is channel
    other = pool.acquire()
    assert other is not channel
    with pytest.raises(ChannelLimitExceeded):
        pool.acquire()
    with pytest.raises(ChannelLimitExceeded):
        pool.acquire(block=True, timeout=0.05)


def test_channel_pool_replace_closes_the_channel(connection: Connection) -> None:
    pool = connection.ChannelPool(limit=1)
    channel = pool.acquire()
    closed = []
    channel.close = lambda: closed.append(channel)
    pool.replace(channel)
    assert closed == [channel]
    assert pool.acquire() is not channel


def test_threads_never_share_a_resource_or_exceed_the_limit() -> None:
    """32 threads acquire, release and replace at random on a pool of 3."""
    import random

    pool = Pool(limit=3)
    lock = threading.Lock()
    in_use: set[int] = set()
    problems: list[str] = []
    stop_at = time.monotonic() + 1.0

    def work() -> None:
        rng = random.Random()
        while time.monotonic() < stop_at:
            try:
                thing = pool.acquire(block=True, timeout=0.5)
            except pool.PoolTimeout:
                continue
            with lock:
                if thing.id in in_use:
                    problems.append(f"{thing!r} handed out twice")
                in_use.add(thing.id)
                if len(in_use) > 3:
                    problems.append(f"{len(in_use)} in use")
            if rng.random() < 0.5:
                time.sleep(0)  # let another thread run while holding it
            with lock:
                in_use.discard(thing.id)
            if rng.random() < 0.05:
                pool.replace(thing)
            else:
                thing.release()

    run_threads(work, 32, timeout=30)
    assert not problems, problems[:5]
    assert not pool._dirty and not pool._waiters and pool._pending == 0
    assert len(pool._resource.queue) == 3  # every slot is back: resources or placeholders
    live = idle(pool)
    assert len({id(x) for x in live}) == len(live)


def test_preload_connects_that_many_connections_now() -> None:
    pool = Connection("memory://").Pool(3, 2)
    ready = [c for c in pool._resource.queue if isinstance(c, Connection)]
    assert len(ready) == 2 and all(c.connected for c in ready)
    first, second, third = (pool.acquire() for _ in range(3))
    assert first.connected and second.connected  # the preloaded ones go out first
    assert {first, second} == set(ready) and not third.connected
    for conn in (first, second, third):
        conn.release()
    assert Connection("memory://").Pool(2, preload=5)._resource.queue[0].connected


def test_preload_makes_channels_now() -> None:
    conn = Connection("memory://")
    pool = conn.ChannelPool(2, 1)
    ready = [c for c in pool._resource.queue if not isinstance(c, lazy)]
    assert len(ready) == 1 and conn.connected
    assert pool.acquire() is ready[0]


def test_preload_of_an_unreachable_broker_warns_and_stays_lazy(
        caplog: pytest.LogCaptureFixture) -> None:
    pool = Connection("amqp://guest:guest@127.0.0.1:1//", connect_timeout=1).Pool(2, 2)
    assert all(isinstance(x, lazy) for x in pool._resource.queue)
    assert "preloaded 0 of 2 resources" in caplog.text and "refused" in caplog.text.lower()
