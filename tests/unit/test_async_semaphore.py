"""kombu.asynchronous.semaphore: LaxBoundedSemaphore and DummyLock."""

from __future__ import annotations

from typing import Any

from kombu.asynchronous.semaphore import DummyLock, LaxBoundedSemaphore


def test_acquire_calls_at_once_while_slots_are_free() -> None:
    sem = LaxBoundedSemaphore(2)
    calls: list[Any] = []
    assert sem.acquire(calls.append, 1) is True
    assert sem.acquire(lambda *a, **kw: calls.append((a, kw)), 2, x=3) is True
    assert calls == [1, ((2,), {"x": 3})]
    assert sem.value == 0
    assert sem.acquire(calls.append, 4) is False
    assert calls == [1, ((2,), {"x": 3})]
    assert "value:0 waiting:1" in repr(sem)


def test_release_runs_waiters_first_in_first_out() -> None:
    sem = LaxBoundedSemaphore(1)
    calls: list[int] = []
    sem.acquire(calls.append, 1)
    sem.acquire(calls.append, 2)
    sem.acquire(calls.append, 3)
    sem.release()
    assert calls == [1, 2]
    assert sem.value == 0  # the slot went to the waiter
    sem.release()
    assert calls == [1, 2, 3]
    sem.release()
    assert sem.value == 1


def test_release_never_exceeds_the_initial_value() -> None:
    sem = LaxBoundedSemaphore(2)
    for _ in range(5):
        sem.release()
    assert sem.value == 2 == sem.initial_value


def test_grow_adds_slots_and_wakes_waiters() -> None:
    sem = LaxBoundedSemaphore(1)
    calls: list[int] = []
    for i in range(4):
        sem.acquire(calls.append, i)
    assert calls == [0]
    sem.grow(2)
    assert calls == [0, 1, 2]
    assert sem.initial_value == 3
    sem.grow()
    assert calls == [0, 1, 2, 3]
    assert sem.initial_value == 4


def test_shrink_removes_slots_without_going_negative() -> None:
    sem = LaxBoundedSemaphore(3)
    sem.shrink(2)
    assert (sem.initial_value, sem.value) == (1, 1)
    sem.shrink(5)
    assert (sem.initial_value, sem.value) == (0, 0)
    calls: list[int] = []
    assert sem.acquire(calls.append, 1) is False
    sem.release()  # value stays bounded by initial_value 0, but the waiter runs
    assert calls == [1]
    sem.release()
    assert sem.value == 0


def test_clear_forgets_waiters_and_frees_every_slot() -> None:
    sem = LaxBoundedSemaphore(1)
    calls: list[int] = []
    sem.acquire(calls.append, 1)
    sem.acquire(calls.append, 2)
    sem.clear()
    assert sem.value == 1
    sem.release()
    assert calls == [1]


def test_dummy_lock_is_a_context_manager_that_does_nothing() -> None:
    lock = DummyLock()
    with lock as entered:
        assert entered is lock
    try:
        with lock:
            raise KeyError("x")
    except KeyError:
        pass
    else:  # pragma: no cover
        raise AssertionError("DummyLock swallowed an exception")
