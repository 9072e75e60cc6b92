"""kombu.clocks: LamportClock and timetuple."""

from __future__ import annotations

import heapq
import pickle
import threading

import pytest
from kombu.clocks import LamportClock, timetuple


def test_forward_and_adjust() -> None:
    clock = LamportClock()
    assert clock.value == 0
    assert clock.forward() == 1
    assert clock.forward() == 2
    assert clock.adjust(10) == 11
    assert clock.value == 11
    assert clock.adjust(3) == 12  # an older clock still moves it by one


def test_initial_value_str_repr() -> None:
    clock = LamportClock(initial_value=41)
    assert clock.forward() == 42
    assert str(clock) == "42"
    assert repr(clock) == "<LamportClock: 42>"


def test_custom_lock_is_used() -> None:
    entered: list[int] = []

    class CountingLock:
        def __enter__(self) -> None:
            entered.append(1)

        def __exit__(self, *exc: object) -> None:
            pass

    clock = LamportClock(Lock=CountingLock)
    clock.forward()
    clock.adjust(5)
    assert len(entered) == 2
    assert clock.value == 6


def test_thread_safe_forward() -> None:
    clock = LamportClock()
    seen: list[list[int]] = [[] for _ in range(8)]

    def work(out: list[int]) -> None:
        for _ in range(2000):
            out.append(clock.forward())

    threads = [threading.Thread(target=work, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    values = [v for out in seen for v in out]
    assert clock.value == 16000
    assert sorted(values) == list(range(1, 16001))  # no value handed out twice


def test_sort_heap_unique_clocks_returns_first() -> None:
    clock = LamportClock()
    assert clock.sort_heap([(1, "b"), (2, "a"), (3, "c")]) == (1, "b")


def test_sort_heap_tied_clocks_lowest_id_wins() -> None:
    clock = LamportClock()
    assert clock.sort_heap([(1, "c"), (1, "b"), (2, "a")]) == (1, "b")
    # the last event of the tie counts too (kombu skipped it)
    assert clock.sort_heap([(1, "b"), (1, "a")]) == (1, "a")
    # extra elements are carried along
    assert clock.sort_heap([(4, "z", "x"), (4, "y", "w")]) == (4, "y", "w")


def test_sort_heap_single_and_empty() -> None:
    clock = LamportClock()
    assert clock.sort_heap([(7, "only")]) == (7, "only")
    with pytest.raises(ValueError, match="at least one event"):
        clock.sort_heap([])


def test_timetuple_fields_and_defaults() -> None:
    t = timetuple(3, 100.5, "host:1")
    assert (t.clock, t.timestamp, t.id, t.obj) == (3, 100.5, "host:1", None)
    assert tuple(t) == (3, 100.5, "host:1", None)
    t2 = timetuple(3, 100.5, "host:1", {"k": 1})
    assert t2.obj == {"k": 1}
    assert repr(t2) == "_lamport(clock=3, timestamp=100.5, id=host:1 {'k': 1})"


def test_timetuple_orders_by_clock_then_id() -> None:
    a = timetuple(1, 500.0, "b")
    b = timetuple(2, 100.0, "a")
    assert a < b and b > a
    assert not b < a
    same_clock_low_id = timetuple(5, 9.0, "a")
    same_clock_high_id = timetuple(5, 1.0, "b")
    assert same_clock_low_id < same_clock_high_id
    assert same_clock_high_id >= same_clock_low_id
    assert same_clock_low_id <= same_clock_high_id


def test_timetuple_without_clock_orders_by_timestamp() -> None:
    early = timetuple(None, 1.0, "z")
    late = timetuple(9, 2.0, "a")
    assert early < late  # one side has no clock: timestamps decide
    assert timetuple(0, 5.0, "a") > timetuple(0, 4.0, "b")


def test_timetuple_le_ge_on_equal_keys() -> None:
    x = timetuple(1, 1.0, "a", "first")
    y = timetuple(1, 1.0, "a", "second")
    assert x <= y and y <= x and x >= y
    assert not x < y and not x > y
    assert x != y  # equality compares all four fields


def test_timetuple_in_a_heap() -> None:
    events = [timetuple(3, 0.0, "c"), timetuple(1, 0.0, "b"), timetuple(1, 0.0, "a"),
              timetuple(2, 0.0, "d")]
    heap: list[timetuple] = []
    for e in events:
        heapq.heappush(heap, e)
    order = [heapq.heappop(heap).id for _ in range(len(events))]
    assert order == ["a", "b", "d", "c"]


def test_timetuple_compare_with_bad_types() -> None:
    t = timetuple(1, 1.0, "a")
    with pytest.raises(TypeError):
        t < 5  # noqa: B015
    with pytest.raises(TypeError):
        t > "text"  # noqa: B015


def test_timetuple_pickles() -> None:
    t = timetuple(4, 2.5, "h:2", [1, 2])
    back = pickle.loads(pickle.dumps(t))
    assert back == t and isinstance(back, timetuple)
    assert back.obj == [1, 2]
