"""kombu.asynchronous.Hub driven with real sockets, pipes, pollers and timers (bounded)."""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from queue import Empty
from typing import Any, Callable

import kombu.asynchronous as asynchronous
import pytest
from kombu.asynchronous import ERR, READ, WRITE, Hub, debug, get_event_loop, set_event_loop
from kombu.asynchronous import hub as hub_module
from kombu.utils import eventio
from vine import promise

MAX_TURNS = 200


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub()
    yield h
    h.close()
    set_event_loop(None)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def turn_until(hub: Hub, predicate: Callable[[], object], turns: int = MAX_TURNS) -> int:
    """Run turns until ``predicate()``; fail after ``turns``.  Returns the turns used."""
    for n in range(1, turns + 1):
        hub.run_once()
        if predicate():
            return n
    raise AssertionError(f"not reached in {turns} turns")


def test_public_names() -> None:
    assert set(asynchronous.__all__) == {"READ", "WRITE", "ERR", "Hub", "get_event_loop",
                                          "set_event_loop"}
    assert (Hub.READ, Hub.WRITE, Hub.ERR) == (READ, WRITE, ERR) == (1, 4, 24)


def test_import_kombu_does_not_load_the_event_loop() -> None:
    import subprocess
    import sys

    code = "import sys, kombu; print(any(m.startswith(('kombu.asynchronous', 'vine')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_current_loop() -> None:
    assert get_event_loop() is None
    h = Hub()
    try:
        assert set_event_loop(h) is h
        assert get_event_loop() is h is hub_module._current_loop
        h.close()  # closing the current loop unsets it
        assert get_event_loop() is None
    finally:
        set_event_loop(None)


def test_reader_fires_with_its_arguments(hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    got: list[Any] = []
    hub.add_reader(a, lambda sock, tag: got.append((sock.recv(10), tag)), a, "t")
    assert hub.readers == {a.fileno(): (hub.readers[a.fileno()][0], (a, "t"))}
    b.send(b"one")
    turn_until(hub, lambda: got)
    assert got == [(b"one", "t")]


def test_writer_fires_and_remove_writer_keeps_the_reader(
        hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    events: list[str] = []
    hub.add_reader(a, lambda: events.append("r") or a.recv(10))
    hub.add_writer(a, lambda: events.append("w"))
    assert a.fileno() in hub.readers and a.fileno() in hub.writers
    turn_until(hub, lambda: "w" in events)  # writable at once, nothing to read yet
    assert "r" not in events
    hub.remove_writer(a)
    assert a.fileno() in hub.readers and a.fileno() not in hub.writers
    events.clear()
    b.send(b"x")
    turn_until(hub, lambda: "r" in events)
    assert "w" not in events


def test_remove_reader_keeps_the_writer(hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    events: list[str] = []
    hub.add_writer(a.fileno(), events.append, "w")
    hub.add_reader(a.fileno(), events.append, "r")
    b.send(b"x")
    turn_until(hub, lambda: "r" in events and "w" in events)  # both fire for one descriptor
    hub.remove_reader(a)
    assert list(hub.writers) == [a.fileno()] and not hub.readers
    events.clear()
    turn_until(hub, lambda: events)
    assert set(events) == {"w"}


def test_a_callback_may_remove_descriptors_during_dispatch(
        hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    c, d = socket.socketpair()
    try:
        calls: list[str] = []

        def on_a() -> None:
            calls.append("a")
            hub.remove(a)
            hub.remove(c)  # the other one, possibly ready in this very turn

        def on_c() -> None:
            calls.append("c")
            hub.remove(a)
            hub.remove(c)

        hub.add_reader(a, on_a)
        hub.add_reader(c, on_c)
        b.send(b"x")
        d.send(b"x")
        turn_until(hub, lambda: calls)
        assert len(calls) == 1
        assert not hub.readers
        hub.call_later(0.01, calls.append, "timer")
        turn_until(hub, lambda: "timer" in calls)
        assert len(calls) == 2  # neither socket fires once removed
    finally:
        c.close()
        d.close()


def test_reader_removing_its_own_writer_stops_the_writer_call(
        hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    calls: list[str] = []

    def on_read() -> None:
        calls.append("r")
        hub.remove_writer(a)

    hub.add_reader(a, on_read)
    hub.add_writer(a, calls.append, "w")
    b.send(b"x")
    turn_until(hub, lambda: "r" in calls)
    assert calls == ["r"]


def test_generator_callbacks_advance_once_per_event(
        hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    steps: list[bytes] = []

    def reader() -> Iterator[None]:
        for _ in range(2):
            steps.append(a.recv(1))
            yield

    hub.add_reader(a, reader())
    b.send(b"xyz")
    turn_until(hub, lambda: len(steps) == 2)
    # Exhausted: StopIteration is swallowed and the loop goes on.
    hub.run_once()
    assert steps == [b"x", b"y"]


def test_generator_raising_ebadf_is_removed_without_stopping_the_loop(
        hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair

    def reader() -> Iterator[None]:
        raise OSError(errno.EBADF, "bad descriptor")
        yield  # pragma: no cover

    hub.add_reader(a, reader())
    b.send(b"x")
    turn_until(hub, lambda: a.fileno() not in hub.readers)


def test_generator_raising_other_errors_is_removed_and_the_error_propagates(
        hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair

    def reader() -> Iterator[None]:
        raise RuntimeError("broken reader")
        yield  # pragma: no cover

    hub.add_reader(a, reader())
    b.send(b"x")
    with pytest.raises(RuntimeError, match="broken reader"):
        turn_until(hub, lambda: False)
    assert not hub.readers


def test_plain_callback_errors_propagate_but_empty_is_ignored(
        hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    calls: list[int] = []

    def empty() -> None:
        calls.append(1)
        raise Empty()

    hub.add_reader(a, empty)
    b.send(b"x")
    turn_until(hub, lambda: len(calls) >= 2)  # still registered after Empty

    def failing() -> None:
        raise KeyError("from callback")

    hub.add_reader(a, failing)
    loop = hub.create_loop()
    with pytest.raises(KeyError, match="from callback"):
        for _ in range(MAX_TURNS):
            next(loop)
    with pytest.raises(StopIteration):  # that generator is finished...
        next(loop)
    hub.remove(a)
    hub.call_soon(calls.append, 99)
    loop = hub.create_loop()  # ...and a new one carries on (what Celery's asynloop does)
    next(loop)
    assert calls[-1] == 99


def test_consolidated_writers_go_to_one_callback(hub: Hub) -> None:
    socks = [socket.socketpair() for _ in range(3)]
    try:
        batches: list[list[int]] = []
        hub.consolidate_callback = batches.append
        fds = sorted(s[0].fileno() for s in socks)
        for fd in fds:
            hub.add(fd, None, WRITE | ERR, consolidate=True)
        assert hub.consolidate == set(fds)
        assert all(hub.writers[fd] is None for fd in fds)
        turn_until(hub, lambda: batches)
        assert sorted(batches[0]) == fds
        hub.remove_writer(fds[0])
        assert fds[0] not in hub.consolidate
        batches.clear()
        turn_until(hub, lambda: batches)
        assert sorted(batches[0]) == fds[1:]
    finally:
        for x, y in socks:
            x.close()
            y.close()


def test_call_soon_wraps_callables_in_promises_and_keeps_thenables(hub: Hub) -> None:
    calls: list[Any] = []
    p = hub.call_soon(calls.append, 1)
    assert isinstance(p, promise) and p.fun == calls.append and p.args == (1,)
    q = promise(calls.append, (2,))
    assert hub.call_soon(q) is q
    assert hub._ready == {p, q}
    hub.run_once()
    assert sorted(calls) == [1, 2]
    assert hub._ready == set()


def test_pop_ready_takes_the_set_and_leaves_an_empty_one(hub: Hub) -> None:
    calls: list[int] = []
    p = hub.call_soon(calls.append, 1)
    ready = hub._pop_ready()
    assert ready == {p} and isinstance(ready, set)
    assert hub._pop_ready() == set()
    hub.run_once()
    assert calls == []  # popped callbacks are the popper's to run


def test_callbacks_queued_by_callbacks_run_in_the_next_turn(hub: Hub) -> None:
    order: list[str] = []

    def first() -> None:
        order.append("first")
        hub.call_soon(order.append, "second")

    hub.call_soon(first)
    hub.run_once()
    assert order == ["first"]
    hub.run_once()
    assert order == ["first", "second"]


def test_a_failing_ready_callback_keeps_the_others_queued(hub: Hub) -> None:
    calls: list[int] = []
    hub.call_soon(calls.append, 1)
    hub.call_soon(calls.append, 2)
    hub.call_soon(int, "not a number")
    with pytest.raises(ValueError):
        for _ in range(3):
            hub.run_once()
    hub.run_once()
    assert sorted(calls) == [1, 2]


def test_call_soon_from_another_thread_wakes_the_poller(hub: Hub) -> None:
    calls: list[str] = []
    hub.run_once()  # the loop exists, with its waker
    waker = hub._waker
    assert waker is not None
    t = threading.Thread(target=hub.call_soon, args=(calls.append, "from thread"))
    t.start()
    t.join(10)
    assert hub._wake_pending
    ready = dict(hub.poller.poll(0) or ())
    assert ready.get(waker.fileno(), 0) & READ  # the poll would return at once
    hub.run_once()
    hub.run_once()
    assert calls == ["from thread"]
    assert not hub._wake_pending
    assert dict(hub.poller.poll(0) or ()) == {}  # drained


def test_call_soon_in_the_loop_thread_does_not_write_to_the_waker(hub: Hub) -> None:
    hub.run_once()
    hub.call_soon(print)
    assert not hub._wake_pending
    assert hub._waker is not None and dict(hub.poller.poll(0) or ()) == {}


def test_timers_run_in_due_order_through_the_loop(hub: Hub) -> None:
    order: list[str] = []
    hub.call_later(0.03, order.append, "c")
    hub.call_at(time.monotonic() + 0.01, order.append, "a")
    hub.call_later(0.02, order.append, "b")
    turn_until(hub, lambda: len(order) == 3)
    assert order == ["a", "b", "c"]


def test_call_repeatedly_cadence_and_cancel(hub: Hub) -> None:
    ticks: list[str] = []
    entry = hub.call_repeatedly(0.005, ticks.append, "tick")
    once: list[str] = []
    hub.call_later(0.001, once.append, "once")
    turn_until(hub, lambda: len(ticks) >= 3, turns=2000)
    assert once == ["once"]
    assert set(ticks) == {"tick"}
    entry.cancel()
    n = len(ticks)
    marker: list[int] = []
    hub.call_later(0.02, marker.append, 1)
    turn_until(hub, lambda: marker, turns=2000)
    assert len(ticks) == n  # cancelled: no more runs
    assert hub.timer.queue == []


def test_fire_timers_logs_errors_and_propagates_the_chosen_ones(
        hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    hub.call_later(-1, int, "x")  # ValueError: logged
    hub.call_later(-1, calls.append, 1)
    with caplog.at_level(logging.ERROR, logger=hub_module.logger.name):
        hub.fire_timers()
    assert calls == [1]
    assert "Error in timer" in caplog.text
    hub.call_later(-1, int, "x")
    with pytest.raises(ValueError):
        hub.fire_timers(propagate=(ValueError,))
    hub.call_later(-1, _raise, MemoryError())
    with pytest.raises(MemoryError):
        hub.fire_timers()
    hub.call_later(-1, _raise, OSError(errno.ENOMEM, "no memory"))
    with pytest.raises(OSError):
        hub.fire_timers()


def _raise(exc: BaseException) -> None:
    raise exc


def test_propagate_errors_leave_the_loop(hub: Hub) -> None:
    hub.propagate_errors = (ConnectionError,)
    hub.call_later(-1, _raise, ConnectionError("broker gone"))
    with pytest.raises(ConnectionError, match="broker gone"):
        hub.run_once()
    hub.call_later(-1, _raise, LookupError("only logged"))
    hub.run_once()  # not in propagate_errors: the loop carries on


def test_fire_timers_returns_the_wait(hub: Hub) -> None:
    assert hub.fire_timers(min_delay=3) == 3  # nothing scheduled
    hub.call_later(100, print)
    assert 0 < hub.fire_timers(max_delay=5) <= 2  # the timer's max_interval
    for _ in range(15):
        hub.call_later(-1, print)
    assert hub.fire_timers(max_timers=10) == 0  # five still due: do not wait
    assert len(hub.timer) == 6


def test_on_tick_runs_every_turn_and_may_change_itself(hub: Hub) -> None:
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(1)
        if len(ticks) == 3:
            hub.on_tick.discard(tick)

    hub.on_tick.add(tick)
    hub.call_later(0.001, print)
    for _ in range(5):
        hub.call_soon(print)
        hub.run_once()
    assert ticks == [1, 1, 1]


def test_adding_a_closed_socket_raises_and_registers_nothing(hub: Hub) -> None:
    a, b = socket.socketpair()
    a.close()
    b.close()
    with pytest.raises(ValueError):
        hub.add_reader(a, print)  # fileno() is -1 now
    assert not hub.readers and not hub.consolidate


def test_adding_a_closed_descriptor_number_raises_ebadf(hub: Hub) -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    if not isinstance(hub.poller, eventio._epoll):
        pytest.skip("only epoll checks descriptors when they are registered")
    with pytest.raises(OSError) as info:
        hub.add_reader(r, print)
    assert info.value.errno in eventio.SELECT_BAD_FD
    assert r not in hub.readers


def test_closed_descriptor_with_the_select_poller_does_not_crash_the_loop(hub: Hub) -> None:
    poller = hub.poller = eventio._select()
    hub.run_once()  # the waker exists before a number is freed below (no reuse)
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        got: list[bytes] = []
        hub.add_reader(a, print)
        fd = a.fileno()
        hub.add_reader(c, lambda: got.append(c.recv(10)))
        a.close()  # closed behind the hub's back
        d.send(b"ok")
        turn_until(hub, lambda: got)
        assert got == [b"ok"]
        assert fd not in poller._rfd  # select refused it: dropped from the poller
    finally:
        for s in (a, b, c, d):
            s.close()


def test_error_event_without_a_callback_removes_the_descriptor(hub: Hub) -> None:
    r, w = os.pipe()
    try:
        hub.add(r, None, READ | ERR, consolidate=True)  # a reader entry of None
        hub.consolidate.discard(r)  # ... no longer consolidated: nothing to call
        os.close(w)
        w = -1
        hub.call_later(0.5, print)
        turn_until(hub, lambda: r not in hub.readers)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def test_reset_drops_descriptors_keeps_timers_and_runs_pending_work(
        hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    closed: list[Hub] = []
    calls: list[int] = []
    hub.on_close.add(closed.append)
    hub.add_reader(a, print)
    hub.add(a, None, WRITE, consolidate=True)
    entry = hub.call_later(60, print)
    hub.call_soon(calls.append, 1)
    old = hub.poller
    hub.reset()
    assert not hub.readers and not hub.writers and not hub.consolidate
    assert hub.poller is not old
    assert closed == [hub] and calls == [1]
    assert [s.entry for s in hub.timer.queue] == [entry]
    hub.add_reader(a, print)  # usable again
    assert a.fileno() in hub.readers


def test_close_then_reuse(hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    hub.add_reader(a, print)
    hub.run_once()
    waker = hub._waker
    assert waker is not None
    hub.close()
    assert hub._poller is None and hub._waker is None and not hub.readers
    assert waker.reader.fileno() == -1  # the waker's sockets are closed
    got: list[bytes] = []
    hub.add_reader(a, lambda: got.append(a.recv(10)))  # a new poller, created on demand
    b.send(b"again")
    turn_until(hub, lambda: got)
    assert got == [b"again"]


def test_context_manager_closes(pair: tuple[socket.socket, socket.socket]) -> None:
    with Hub() as h:
        h.add_reader(pair[0], print)
    assert not h.readers and h._poller is None


def test_stop_ends_run_forever_and_a_new_run_starts_cleanly(hub: Hub) -> None:
    turns: list[int] = []
    hub.on_tick.add(lambda: turns.append(1))
    hub.call_later(0.001, hub.stop)
    hub.run_forever()
    assert not hub._running and hub._loop is None
    n = len(turns)
    hub.call_soon(hub.stop)
    hub.run_forever()
    assert len(turns) == n + 1  # stopped in its first turn


def test_asynloop_pattern(hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    """What Celery's asynloop does: create_loop once, next() it, recreate on StopIteration."""
    a, b = pair
    received: list[bytes] = []
    hub.add_reader(a, lambda: received.append(a.recv(100)))
    heartbeat: list[int] = []
    hub.timer.call_repeatedly(0.002, heartbeat.append, (1,))
    hub.propagate_errors = (ConnectionError,)
    loop = hub.create_loop()
    for i in range(3):
        b.send(b"m%d" % i)
        for _ in range(MAX_TURNS):
            try:
                next(loop)
            except StopIteration:  # pragma: no cover - only when the poller is closed under us
                loop = hub.create_loop()
            if len(received) > i:
                break
    assert b"".join(received) == b"m0m1m2"
    entries = {s.entry for s in hub.timer.queue}
    assert len(entries) == 1
    for entry in entries:
        hub.timer.cancel(entry)


def test_debug_descriptions(hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair

    def on_read(x: int) -> None:
        pass

    hub.add_reader(a, on_read, 7)
    hub.add(b, None, WRITE, consolidate=True)
    fa, fb = a.fileno(), b.fileno()
    assert debug.repr_flag(READ | ERR) == "R!" and debug.repr_flag(WRITE) == "W"
    assert debug.repr_readers(hub) == [f"({fa})on_read(7)->R!"]
    assert debug.repr_writers(hub) == [f"({fb})<missing>->W"]
    assert hub.repr_active() == f"({fa})on_read(7)->R!, ({fb})<missing>->W"
    hub.consolidate_callback = print
    assert debug.callback_for(hub, fb, WRITE) is print
    assert debug.callback_for(hub, 9999, READ, "none") == "none"
    with pytest.raises(KeyError):
        debug.callback_for(hub, 9999, READ)
    assert hub.repr_events([(fa, READ), (9999, READ)]) == f"on_read(7)({fa})->R, (GONE)(9999)->R"
    assert repr(hub) == f"<Hub@{id(hub):#x}: R:1 W:1>"


def test_on_callback_error_logs(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger=hub_module.logger.name):
        hub.on_callback_error(print, ValueError("bad"))
    assert "raised exception" in caplog.text and "bad" in caplog.text


def test_scheduler_is_one_shared_iterator(hub: Hub) -> None:
    assert hub.scheduler is hub.scheduler
    entry = hub.call_later(-1, print)
    assert next(hub.scheduler) == (None, entry)


def test_descriptor_closed_behind_the_hubs_back_with_the_default_poller(hub: Hub) -> None:
    hub.run_once()  # the waker exists before numbers are freed below
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        got: list[bytes] = []
        hub.add_reader(a, print)
        fd = a.fileno()
        hub.add_reader(c, lambda: got.append(c.recv(10)))
        a.close()
        d.send(b"ok")
        turn_until(hub, lambda: got)  # the other reader still works
        assert got == [b"ok"]
        hub.remove(fd)  # the stale number: no error
        assert fd not in hub.readers
    finally:
        for s in (a, b, c, d):
            s.close()


@pytest.mark.skipif(not hasattr(eventio.select, "poll"), reason="select.poll is not available here")
def test_closed_descriptor_with_the_poll_poller_removes_a_generator_reader(hub: Hub) -> None:
    hub.poller = eventio._poll()
    hub.run_once()  # the waker exists before the number below is freed (no reuse)
    a, b = socket.socketpair()
    fd = a.fileno()
    steps: list[str] = []

    def reader() -> Iterator[None]:
        while True:
            steps.append("read")
            os.read(fd, 10)  # EBADF once the descriptor is closed
            yield

    hub.add_reader(fd, reader())
    a.close()
    b.close()
    turn_until(hub, lambda: fd not in hub.readers, turns=5)  # POLLNVAL -> ERR -> EBADF -> removed
    assert steps == ["read"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_waker(hub: Hub, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    got: list[bytes] = []
    hub.add_reader(a, lambda: got.append(a.recv(10)))
    hub.run_once()
    parent = hub._waker
    assert parent is not None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            loop = hub.create_loop()
            child = hub._waker
            ok = child is not None and child is not parent and child.pid == os.getpid()
            hub.call_soon(os.write, w, b"ran")
            next(loop)
            hub.close()  # must not unregister anything from the parent's epoll set
            code = 0 if ok else 2
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        assert time.monotonic() < deadline, "the child did not finish"
        time.sleep(0.01)
    assert os.read(r, 10) == b"ran"
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0
    assert hub._waker is parent  # the parent's is untouched...
    t = threading.Thread(target=hub.call_soon, args=(print,))
    t.start()
    t.join(10)
    ready = dict(hub.poller.poll(0) or ())
    assert ready.get(parent.fileno(), 0) & READ  # ...and still watched by the parent's poller
    b.send(b"parent")
    turn_until(hub, lambda: got)
    assert got == [b"parent"]
