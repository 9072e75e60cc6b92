"""kombu.utils.functional, retry_over_time's limits and sleeps above all."""

from __future__ import annotations

import copy
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kombu.utils.functional import (
    ChannelPromise,
    LRUCache,
    accepts_argument,
    dictfilter,
    fxrange,
    fxrangemax,
    is_list,
    lazy,
    maybe_evaluate,
    maybe_list,
    memoize,
    reprcall,
    reprkwargs,
    retry_over_time,
    shufflecycle,
)


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class Failing:
    """Raise ``exc`` for the first ``failures`` calls, recording when each call happened."""

    def __init__(self, failures: float, exc: type[Exception] = Flaky) -> None:
        self.failures = failures
        self.exc = exc
        self.calls: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise self.exc(len(self.calls))
        return ("ok", args, kwargs)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.calls, self.calls[1:])]


FAST = {"interval_start": 0.01, "interval_step": 0.01, "interval_max": 0.05}


class TestRetryOverTime:
    def test_success_first_time(self) -> None:
        fun = Failing(0)
        assert retry_over_time(fun, Flaky, (1,), {"a": 2}, **FAST) == ("ok", (1,), {"a": 2})
        assert len(fun.calls) == 1

    def test_retries_until_success(self) -> None:
        fun = Failing(3)
        assert retry_over_time(fun, Flaky, max_retries=5, **FAST)[0] == "ok"
        assert len(fun.calls) == 4

    def test_max_retries_zero_is_a_single_attempt(self) -> None:
        fun = Failing(10)
        with pytest.raises(Flaky, match="1"):
            retry_over_time(fun, Flaky, max_retries=0, **FAST)
        assert len(fun.calls) == 1

    @pytest.mark.parametrize("max_retries", [1, 2, 4])
    def test_max_retries_counts_retries_after_the_first_attempt(self, max_retries: int) -> None:
        fun = Failing(100)
        with pytest.raises(Flaky) as info:
            retry_over_time(fun, Flaky, max_retries=max_retries, **FAST)
        assert len(fun.calls) == max_retries + 1
        assert info.value.args == (max_retries + 1,)  # the last error is re-raised

    def test_none_retries_forever(self) -> None:
        fun = Failing(25)
        result = retry_over_time(fun, Flaky, max_retries=None, interval_start=0,
                                 interval_step=0, interval_max=0)
        assert result[0] == "ok"
        assert len(fun.calls) == 26

    def test_uncaught_errors_propagate_at_once(self) -> None:
        fun = Failing(5, exc=Fatal)
        with pytest.raises(Fatal):
            retry_over_time(fun, Flaky, max_retries=5, **FAST)
        assert len(fun.calls) == 1

    def test_catch_tuple(self) -> None:
        fun = Failing(2, exc=Fatal)
        assert retry_over_time(fun, (Flaky, Fatal), max_retries=3, **FAST)[0] == "ok"

    def test_always_sleeps_the_growing_interval(self) -> None:
        fun = Failing(4)
        retry_over_time(fun, Flaky, interval_start=0.02, interval_step=0.02, interval_max=0.05)
        expected = [0.02, 0.04, 0.05, 0.05]  # capped at interval_max
        gaps = fun.gaps()
        assert len(gaps) == 4
        for gap, planned in zip(gaps, expected):
            assert planned * 0.9 <= gap < planned + 0.5

    def test_sleeps_even_with_a_single_retry(self) -> None:
        # kombu#612: retries must not spin.
        fun = Failing(1)
        retry_over_time(fun, Flaky, max_retries=1, interval_start=0.05)
        assert fun.gaps()[0] >= 0.045

    def test_errback_gets_exception_intervals_and_retry_count(self) -> None:
        fun = Failing(3)
        seen: list[tuple[Any, ...]] = []

        def errback(exc: BaseException, intervals: Iterator[float], retries: int) -> float:
            seen.append((exc.args, retries))
            return next(intervals)

        retry_over_time(fun, Flaky, errback=errback, max_retries=5, **FAST)
        assert seen == [((1,), 0), ((2,), 1), ((3,), 2)]

    def test_errback_return_value_is_the_sleep(self) -> None:
        fun = Failing(2)
        retry_over_time(fun, Flaky, errback=lambda exc, intervals, retries: 0.05,
                        interval_start=5, interval_max=5)
        assert all(0.045 <= gap < 1.0 for gap in fun.gaps())

    def test_errback_returning_none_uses_the_planned_interval(self) -> None:
        fun = Failing(1)
        retry_over_time(fun, Flaky, errback=lambda exc, intervals, retries: None,
                        interval_start=0.05)
        assert 0.045 <= fun.gaps()[0] < 1.0

    def test_errback_called_before_sleeping(self) -> None:
        fun = Failing(1)
        marks: list[float] = []
        retry_over_time(fun, Flaky, errback=lambda *a: marks.append(time.monotonic()),
                        interval_start=0.05)
        assert fun.calls[0] <= marks[0] <= fun.calls[1] - 0.045

    def test_timeout_bounds_retry_forever(self) -> None:
        fun = Failing(10**9)
        start = time.monotonic()
        with pytest.raises(Flaky):
            retry_over_time(fun, Flaky, max_retries=None, timeout=0.2,
                            interval_start=0.02, interval_step=0, interval_max=0.02)
        elapsed = time.monotonic() - start
        assert 0.15 <= elapsed < 0.6
        assert len(fun.calls) >= 3

    def test_timeout_never_sleeps_past_the_deadline(self) -> None:
        fun = Failing(10**9)
        start = time.monotonic()
        with pytest.raises(Flaky):
            retry_over_time(fun, Flaky, timeout=0.1, interval_start=5, interval_max=5)
        assert time.monotonic() - start < 0.5
        assert len(fun.calls) == 1

    def test_timeout_zero_is_a_deadline(self) -> None:
        fun = Failing(10)
        with pytest.raises(Flaky):
            retry_over_time(fun, Flaky, timeout=0, interval_start=0, interval_max=0)
        assert len(fun.calls) == 1

    def test_max_retries_reached_before_timeout(self) -> None:
        fun = Failing(100)
        with pytest.raises(Flaky):
            retry_over_time(fun, Flaky, max_retries=2, timeout=10, **FAST)
        assert len(fun.calls) == 3

    def test_success_within_timeout(self) -> None:
        fun = Failing(2)
        assert retry_over_time(fun, Flaky, timeout=5, **FAST)[0] == "ok"

    def test_callback_before_and_about_once_a_second_while_sleeping(self) -> None:
        fun = Failing(1)
        ticks: list[float] = []
        start = time.monotonic()
        retry_over_time(fun, Flaky, callback=lambda: ticks.append(time.monotonic() - start),
                        interval_start=2.5, interval_max=2.5)
        assert fun.gaps()[0] >= 2.45
        # Once before sleeping, then after each whole second of the sleep
        # (the second one may be skipped if a loaded machine oversleeps).
        assert 2 <= len(ticks) <= 3
        assert ticks[0] < 0.2
        assert 0.9 <= ticks[1] < 1.8
        assert all(b - a >= 0.9 for a, b in zip(ticks[1:], ticks[2:]))

    def test_callback_for_short_sleeps(self) -> None:
        fun = Failing(2)
        ticks: list[int] = []
        retry_over_time(fun, Flaky, callback=lambda: ticks.append(1), **FAST)
        assert len(ticks) == 2  # once per retry, the sleeps being shorter than a second


class TestFxrange:
    def test_fxrange(self) -> None:
        assert list(fxrange(1.0, 3.0, 0.5)) == [1.0, 1.5, 2.0, 2.5, 3.0]

    def test_fxrange_repeatlast(self) -> None:
        it = fxrange(1.0, 2.0, 1.0, repeatlast=True)
        assert [next(it) for _ in range(4)] == [1.0, 2.0, 2.0, 2.0]

    def test_fxrange_infinite(self) -> None:
        it = fxrange(1.0, None, 2.0)
        assert [next(it) for _ in range(3)] == [1.0, 3.0, 5.0]

    def test_fxrangemax(self) -> None:
        assert list(fxrangemax(1.0, 3.0, 1.0, max=10.0)) == [1.0, 2.0, 3.0, 3.0]
        assert list(fxrangemax(1.0, None, 1.0, max=6.0)) == [1.0, 2.0, 3.0]


class TestLazy:
    def test_evaluated_on_every_use(self) -> None:
        calls: list[int] = []

        def fun(x: int, y: int = 0) -> int:
            calls.append(1)
            return x + y

        value = lazy(fun, 1, y=2)
        assert value() == 3
        assert str(value) == "3"
        assert repr(value) == "3"
        assert value == 3
        assert value != 4
        assert len(calls) == 5

    def test_maybe_evaluate(self) -> None:
        assert maybe_evaluate(lazy(lambda: 5)) == 5
        assert maybe_evaluate(6) == 6

    def test_deepcopy_and_pickle(self) -> None:
        value = lazy(int, "7")
        assert copy.deepcopy(value) is value
        assert pickle.loads(pickle.dumps(value))() == 7


class TestLists:
    def test_is_list(self) -> None:
        assert is_list([1])
        assert is_list((1,))
        assert is_list({1})
        assert not is_list("ab")
        assert not is_list({"a": 1})
        assert not is_list(1)

    def test_maybe_list(self) -> None:
        assert maybe_list(None) is None
        assert maybe_list(1) == [1]
        assert maybe_list("ab") == ["ab"]
        items = [1]
        assert maybe_list(items) is items

    def test_dictfilter(self) -> None:
        assert dictfilter({"a": 1, "b": None}) == {"a": 1}
        assert dictfilter({"a": 1}, b=2, c=None) == {"a": 1, "b": 2}
        assert dictfilter(a=None, b=0) == {"b": 0}

    def test_shufflecycle(self) -> None:
        it = shufflecycle([1, 2, 3])
        assert {next(it) for _ in range(200)} == {1, 2, 3}


class TestRepr:
    def test_reprcall(self) -> None:
        assert reprcall("f", (1, "a"), {"x": [2]}) == "f(1, 'a', x=[2])"
        assert reprcall("f") == "f()"
        assert reprcall("f", kwargs={"x": 1}) == "f(x=1)"

    def test_reprkwargs(self) -> None:
        assert reprkwargs({"a": 1, "b": "c"}) == "a=1, b='c'"

    def test_unrepresentable_arguments(self) -> None:
        class Bad:
            def __repr__(self) -> str:
                raise RuntimeError("no repr")

            def __str__(self) -> str:
                return "bad"

        assert reprcall("f", (Bad(),)) == "f(bad)"


class TestLRUCache:
    def test_evicts_least_recently_used(self) -> None:
        cache = LRUCache(limit=2)
        cache["a"] = 1
        cache["b"] = 2
        assert cache["a"] == 1  # "b" is now the least recently used
        cache["c"] = 3
        assert sorted(cache.keys()) == ["a", "c"]
        assert "b" not in cache

    def test_overwrite_does_not_evict(self) -> None:
        cache = LRUCache(limit=2)
        cache["a"] = 1
        cache["b"] = 2
        cache["a"] = 3
        assert cache.items() == [("b", 2), ("a", 3)]

    def test_update_trims(self) -> None:
        cache = LRUCache(limit=2)
        cache.update({"a": 1, "b": 2, "c": 3})
        assert cache.keys() == ["b", "c"]
        assert cache.values() == [2, 3]

    def test_unbounded(self) -> None:
        cache = LRUCache()
        for i in range(100):
            cache[i] = i
        assert len(cache) == 100

    def test_incr(self) -> None:
        cache = LRUCache()
        cache["n"] = "1"
        assert cache.incr("n", 2) == 3
        assert cache["n"] == "3"

    def test_popitem_and_iteration(self) -> None:
        cache = LRUCache()
        cache["a"] = 1
        cache["b"] = 2
        assert list(cache) == ["a", "b"]
        assert cache.popitem() == ("b", 2)
        assert cache.popitem(last=False) == ("a", 1)

    def test_missing_key(self) -> None:
        with pytest.raises(KeyError):
            LRUCache()["x"]

    def test_pickle(self) -> None:
        cache = LRUCache(limit=3)
        cache["a"] = 1
        clone = pickle.loads(pickle.dumps(cache))
        assert clone["a"] == 1
        assert clone.limit == 3
        clone["b"] = 2

    def test_threads(self) -> None:
        cache = LRUCache(limit=50)

        def work(offset: int) -> None:
            for i in range(2000):
                cache[offset + i % 100] = i
                cache.get(offset + (i + 1) % 100)

        threads = [threading.Thread(target=work, args=(n * 1000,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(cache) == 50


class TestMemoize:
    def test_caches_results(self) -> None:
        calls: list[tuple[int, int]] = []

        @memoize(maxsize=2)
        def add(a: int, b: int = 0) -> int:
            calls.append((a, b))
            return a + b

        assert add(1, b=2) == 3
        assert add(1, b=2) == 3
        assert add.hits == 1 and add.misses == 1  # type: ignore[attr-defined]
        add(2)
        add(3)
        add(1, b=2)  # evicted by the size limit
        assert len(calls) == 4
        add.clear()  # type: ignore[attr-defined]
        assert add.hits == 0 and add.misses == 0  # type: ignore[attr-defined]
        assert add.original_func(5) == 5  # type: ignore[attr-defined]
        assert add.__name__ == "add"

    def test_keyfun(self) -> None:
        @memoize(keyfun=lambda args, kwargs: args[0] % 2)
        def parity(n: int) -> int:
            return n

        assert parity(1) == 1
        assert parity(3) == 1


class TestChannelPromise:
    def test_evaluated_once(self) -> None:
        calls: list[int] = []

        def contract() -> str:
            calls.append(1)
            return "channel"

        promise = ChannelPromise(contract)
        assert repr(promise).startswith("<promise: 0x")
        assert promise() == "channel"
        assert promise() == "channel"
        assert repr(promise) == "'channel'"
        assert calls == [1]


def test_accepts_argument() -> None:
    def fun(a: int, *, b: int = 1) -> None:
        pass

    f: Callable[..., Any] = fun
    assert accepts_argument(f, "a")
    assert accepts_argument(f, "b")
    assert not accepts_argument(f, "c")
