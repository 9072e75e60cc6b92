"""RetryPolicy on its own: limits, back-off, deadlines and reconnect budgets."""

from __future__ import annotations

import pytest
from kombu.retry import RetryPolicy


def test_defaults_match_ensure_connection() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.interval_start, policy.interval_step,
            policy.interval_max, policy.timeout) == (None, 2.0, 2.0, 30.0, None)
    assert policy.retries == 0 and policy.next_interval() == 2.0 and policy.deadline is None


def test_interval_grows_by_step_up_to_max_when_used() -> None:
    policy = RetryPolicy(interval_start=1, interval_step=2, interval_max=4)
    seen = []
    for _ in range(4):
        seen.append(policy.next_interval())
        policy = policy.increment()
    assert seen == [1.0, 3.0, 4.0, 4.0]
    assert policy.retries == 4


def test_a_retry_that_did_not_wait_keeps_the_interval() -> None:
    policy = RetryPolicy(interval_start=1, interval_step=2, interval_max=10)
    later = policy.increment(waited=False).increment(waited=False)
    assert later.retries == 2 and later.next_interval() == 1.0


def test_max_retries_counts_retries_after_the_first_attempt() -> None:
    policy = RetryPolicy(max_retries=2)
    assert not policy.is_exhausted()
    policy = policy.increment()
    assert not policy.is_exhausted()
    assert policy.increment().is_exhausted()
    assert RetryPolicy(max_retries=0).is_exhausted()
    assert not RetryPolicy(max_retries=None).increment().increment().is_exhausted()


def test_deadline_is_set_by_start_and_counts_the_wait() -> None:
    policy = RetryPolicy(timeout=10).start(now=100.0)
    assert policy.deadline == 110.0
    assert not policy.is_exhausted(now=105.0)
    assert policy.is_exhausted(wait=5.0, now=105.0)   # the retry would begin at the deadline
    assert policy.is_exhausted(now=110.0)
    assert policy.remaining(now=104.0) == 6.0 and policy.remaining(now=200.0) == 0.0
    assert RetryPolicy().remaining() is None


def test_values_do_not_change_and_start_resets_progress() -> None:
    policy = RetryPolicy(max_retries=3, interval_start=1, interval_step=1, interval_max=5)
    used = policy.increment().increment()
    assert policy.retries == 0 and used.retries == 2 and used.next_interval() == 3.0
    assert used.start() == policy
    assert policy.start() is policy  # no timeout: an unused policy is its own start
    assert policy == RetryPolicy(3, 1, 1, 5) and hash(policy) == hash(RetryPolicy(3, 1, 1, 5))
    assert "max_retries=3" in repr(policy)


def test_for_reconnect_gives_each_host_a_try_per_retry_left() -> None:
    policy = RetryPolicy(max_retries=2, interval_start=1, interval_step=0, interval_max=1)
    # this retry and the one left after it, each a try of 3 hosts: 6 attempts
    assert policy.for_reconnect(hosts=3).max_retries == 5
    assert policy.increment().for_reconnect(hosts=3).max_retries == 2
    assert policy.increment().increment().for_reconnect(hosts=1).max_retries == 0
    assert RetryPolicy().for_reconnect(hosts=2).max_retries is None
    timed = RetryPolicy(timeout=5).start(now=0.0)
    assert timed.for_reconnect(hosts=1, now=2.0).timeout == 3.0


def test_from_options_reads_transport_options() -> None:
    policy = RetryPolicy.from_options(
        {"max_retries": 4, "interval_start": 0.5, "interval_step": 0.25, "interval_max": 1,
         "connect_retries_timeout": 7, "visibility_timeout": 60}, timeout=15)
    assert (policy.max_retries, policy.interval_start, policy.interval_step,
            policy.interval_max, policy.timeout) == (4, 0.5, 0.25, 1.0, 7.0)
    assert RetryPolicy.from_options({}, timeout=15).timeout == 15.0


@pytest.mark.parametrize("kwargs, word", [
    ({"max_retries": -1}, "max_retries"),
    ({"max_retries": 1.5}, "max_retries"),
    ({"max_retries": "3"}, "max_retries"),
    ({"interval_start": -1}, "interval_start"),
    ({"interval_step": "soon"}, "interval_step"),
    ({"interval_max": True}, "interval_max"),
    ({"timeout": -0.5}, "timeout"),
])
def test_bad_values_are_refused_by_name(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        RetryPolicy(**kwargs)


def test_whole_floats_and_numeric_text_are_accepted() -> None:
    policy = RetryPolicy(max_retries=3.0, interval_start="0.5")  # type: ignore[arg-type]
    assert policy.max_retries == 3 and policy.interval_start == 0.5
