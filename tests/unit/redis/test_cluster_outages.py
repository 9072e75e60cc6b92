"""kombu_redis.cluster_parts.Outages: which masters a cluster channel leaves
alone after a failure, for how long, and when it forgets them."""

from __future__ import annotations

import logging
import time

import pytest
from kombu_redis.cluster_parts import NODE_RETRY_MAX, NODE_RETRY_MIN, Outages

A, B = ("127.0.0.1", 7000), ("127.0.0.1", 7001)


def test_a_failed_master_is_skipped_until_its_retry_is_due() -> None:
    outages = Outages()
    assert not outages.skip(A) and outages.next_retry() is None
    before = time.monotonic()
    outages.failed(A, ConnectionError("refused"))
    assert outages.skip(A) and not outages.skip(B)
    due = outages.next_retry()
    assert due is not None and before + NODE_RETRY_MIN <= due <= time.monotonic() + NODE_RETRY_MIN
    outages.until[A] = time.monotonic() - 0.001  # the pause is over
    assert not outages.skip(A)


def test_the_pause_doubles_up_to_its_limit_and_success_clears_it() -> None:
    outages = Outages()
    pauses = []
    for _ in range(8):
        start = time.monotonic()
        outages.failed(A, ConnectionError("refused"))
        pauses.append(outages.until[A] - start)
    assert pauses[0] == pytest.approx(NODE_RETRY_MIN, abs=0.01)
    assert pauses[1] == pytest.approx(2 * NODE_RETRY_MIN, abs=0.01)
    assert max(pauses) == pytest.approx(NODE_RETRY_MAX, abs=0.01)
    outages.ok(A)
    assert not outages.skip(A) and outages.next_retry() is None
    start = time.monotonic()
    outages.failed(A, ConnectionError("refused"))
    assert outages.until[A] - start == pytest.approx(NODE_RETRY_MIN, abs=0.01)


def test_one_warning_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    outages = Outages()
    with caplog.at_level(logging.INFO, logger="kombu.transport.redis"):
        for _ in range(3):
            outages.failed(A, ConnectionError("refused"))
        outages.ok(A)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "7000" in warnings[0].getMessage()
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_masters_that_serve_no_consumed_queue_are_forgotten() -> None:
    outages = Outages()
    outages.failed(A, ConnectionError("refused"))
    outages.failed(B, ConnectionError("refused"))
    outages.keep_only({B, None})
    assert not outages.skip(A) and outages.skip(B)
    assert set(outages.until) == {B}
    outages.keep_only(set())
    assert outages.next_retry() is None
