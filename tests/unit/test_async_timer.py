"""kombu.asynchronous.timer: ordering, cancelling, repetition and errors (real clock, bounded)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from kombu.asynchronous.timer import Entry, Timer, logger, scheduled, to_timestamp


def due(timer: Timer, limit: int = 100) -> list[Entry]:
    """Pop every entry that is due now, in the order the timer yields them."""
    out = []
    it = iter(timer)
    for _ in range(limit):
        delay, entry = next(it)
        if entry is None:
            break
        out.append(entry)
    return out


def test_entries_come_out_by_eta_then_priority() -> None:
    timer = Timer()
    now = time.monotonic()
    calls: list[str] = []
    timer.call_at(now - 1, calls.append, ("b",), priority=1)
    timer.call_at(now - 2, calls.append, ("a",))
    timer.call_at(now - 1, calls.append, ("c",), priority=2)
    timer.call_at(now + 3600, calls.append, ("later",))
    assert [s.eta for s in timer.queue] == sorted(s.eta for s in timer.queue)
    assert all(isinstance(s, scheduled) for s in timer.queue)
    for entry in due(timer):
        entry()
    assert calls == ["a", "b", "c"]
    assert len(timer) == 1
    delay, entry = next(iter(timer))
    assert entry is None and 0 < delay <= timer.max_interval == 2.0


def test_equal_etas_do_not_compare_callables() -> None:
    timer = Timer()
    now = time.monotonic()
    # Same eta and priority: the heap falls back to Entry.__lt__ (identity).
    for fun in (print, len, repr, object):
        timer.call_at(now - 1, fun)
    assert len(due(timer)) == 4


def test_empty_timer_yields_nothing_to_do() -> None:
    timer = Timer(max_interval=5)
    assert next(iter(timer)) == (None, None)
    assert len(timer) == 0 and not timer  # bool follows len, as in kombu
    assert timer.__nonzero__() is True
    assert timer.schedule is timer


def test_cancel_skips_the_entry() -> None:
    timer = Timer()
    calls: list[int] = []
    keep = timer.call_after(-1, calls.append, (1,))
    drop = timer.call_after(-1, calls.append, (2,))
    timer.cancel(drop)
    assert drop.cancelled and drop.canceled and not keep.cancelled
    for entry in due(timer):
        entry()
    assert calls == [1]
    other = Entry(print)
    other.cancelled = True
    assert other.canceled


def test_entry_call_and_repr() -> None:
    entry = Entry(divmod, (7, 2))
    assert entry() == (3, 1)
    assert entry.kwargs == {} and entry.args == (7, 2)
    assert repr(entry) == "<TimerEntry: divmod(*(7, 2), **{})"
    assert entry.tref.fun is divmod  # a weak proxy to the entry


def test_enter_at_accepts_datetimes_and_none() -> None:
    timer = Timer()
    calls: list[str] = []
    past = datetime.now(timezone.utc) - timedelta(seconds=30)
    timer.enter_at(Entry(calls.append, ("aware",)), past)
    naive = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=30)
    timer.enter_at(Entry(calls.append, ("naive",)), naive)
    timer.enter_at(Entry(calls.append, ("now",)), None)
    for entry in due(timer):
        entry()
    assert sorted(calls) == ["aware", "naive", "now"]


def test_to_timestamp_maps_wall_time_to_the_monotonic_clock() -> None:
    soon = datetime.now(timezone.utc) + timedelta(seconds=100)
    ts = to_timestamp(soon)
    assert 90 < ts - time.monotonic() < 110
    assert to_timestamp(datetime(1990, 1, 1)) == 0  # the past is due now
    assert to_timestamp(12.5) == 12.5


def test_call_repeatedly_reschedules_the_same_entry_until_cancelled() -> None:
    timer = Timer()
    calls: list[int] = []
    entry = timer.call_repeatedly(0.01, calls.append, (1,))
    deadline = time.monotonic() + 10
    it = iter(timer)
    while len(calls) < 3:
        assert time.monotonic() < deadline
        delay, got = next(it)
        if got is None:
            time.sleep(delay or 0.001)
            continue
        assert got is entry  # the one entry goes round and round
        got()
        assert len(timer) == 1
    entry.cancel()
    time.sleep(0.02)
    assert due(timer) == []
    assert len(timer) == 0
    assert calls == [1, 1, 1]


def test_call_repeatedly_keeps_going_after_an_error() -> None:
    timer = Timer()
    runs: list[int] = []

    def flaky() -> None:
        runs.append(1)
        raise RuntimeError("boom")

    entry = timer.call_repeatedly(0.001, flaky)
    deadline = time.monotonic() + 10
    while len(runs) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.002)
        for got in due(timer):
            with pytest.raises(RuntimeError):
                got()
    assert len(timer) == 1
    timer.cancel(entry)


def test_apply_entry_logs_or_hands_errors_to_on_error(caplog: pytest.LogCaptureFixture) -> None:
    errors: list[BaseException] = []
    timer = Timer(on_error=errors.append)
    timer.apply_entry(Entry(int, ("x",)))
    assert isinstance(errors[0], ValueError)
    plain = Timer()
    with caplog.at_level(logging.ERROR, logger=logger.name):
        plain.apply_entry(Entry(int, ("x",)))
    assert "Error in timer" in caplog.text


def test_clear_keeps_the_list_iterators_hold() -> None:
    timer = Timer()
    it = iter(timer)
    queue = timer._queue
    timer.call_after(-1, print)
    timer.clear()
    assert timer._queue is queue and len(timer) == 0
    assert next(it) == (None, None)


def test_subclass_enter_is_the_only_insertion_point() -> None:
    seen: list[Any] = []

    class Recording(Timer):
        def _enter(self, eta: float, priority: int, entry: Entry) -> Any:
            seen.append((priority, entry.fun))
            return super()._enter(eta, priority, entry)

    with Recording() as timer:
        timer.call_at(time.monotonic(), print, priority=3)
        timer.call_after(1, len)
        timer.call_repeatedly(1, repr)
    assert [p for p, _ in seen] == [3, 0, 0]
