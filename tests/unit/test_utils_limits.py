"""kombu.utils.limits.TokenBucket, with real (short) timings."""

from __future__ import annotations

import time

import pytest
from kombu.utils.limits import TokenBucket


def test_starts_full_and_empties() -> None:
    bucket = TokenBucket(fill_rate=1, capacity=3)
    assert bucket.can_consume(2)
    assert bucket.can_consume(1)
    assert not bucket.can_consume(1)


def test_never_takes_a_partial_amount() -> None:
    bucket = TokenBucket(fill_rate=0.001, capacity=2)
    assert not bucket.can_consume(3)
    assert bucket.can_consume(2)


def test_refills_at_fill_rate() -> None:
    bucket = TokenBucket(fill_rate=50, capacity=1)
    assert bucket.can_consume()
    assert not bucket.can_consume()
    wait = bucket.expected_time()
    assert 0.0 < wait <= 0.02 + 1e-9
    time.sleep(0.03)
    assert bucket.can_consume()


def test_expected_time() -> None:
    bucket = TokenBucket(fill_rate=10, capacity=5)
    assert bucket.expected_time(3) == 0.0
    bucket.can_consume(5)
    assert bucket.expected_time(2) == pytest.approx(0.2, abs=0.02)
    assert TokenBucket(0, 1).expected_time(2) == float("inf")


def test_idle_time_while_full_does_not_refill_later() -> None:
    # kombu refilled the bucket at once after an idle spell spent full.
    bucket = TokenBucket(fill_rate=1, capacity=1)
    time.sleep(0.05)
    assert bucket.can_consume()
    assert not bucket.can_consume()


def test_pending_items() -> None:
    bucket = TokenBucket(fill_rate=1)
    bucket.add("a")
    bucket.add("b")
    assert bucket.pop() == "a"
    bucket.clear_pending()
    with pytest.raises(IndexError):
        bucket.pop()
