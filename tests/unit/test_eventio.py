"""kombu.utils.eventio: every poller of this platform against real sockets and pipes."""

from __future__ import annotations

import errno
import os
import select
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from kombu.utils import eventio
from kombu.utils.eventio import ERR, READ, SELECT_BAD_FD, WRITE, poll

POLLERS = [eventio._select]
if hasattr(select, "poll"):
    POLLERS.append(eventio._poll)
if hasattr(select, "epoll"):
    POLLERS.append(eventio._epoll)
if hasattr(select, "kqueue"):  # pragma: no cover - BSD and macOS
    POLLERS.append(eventio._kqueue)


@pytest.fixture(params=POLLERS, ids=lambda cls: cls.__name__.strip("_"))
def poller(request: pytest.FixtureRequest) -> Iterator[Any]:
    p = request.param()
    yield p
    p.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def as_dict(events: Any) -> dict[int, int]:
    assert events is not None
    return dict(events)


def test_flags_are_kombus_values() -> None:
    assert (READ, WRITE, ERR) == (0x001, 0x004, 0x018)
    assert (eventio.POLL_READ, eventio.POLL_WRITE, eventio.POLL_ERR) == (READ, WRITE, ERR)
    assert errno.EBADF in SELECT_BAD_FD


def test_factory_picks_epoll_on_linux() -> None:
    p = poll()
    try:
        expected = eventio._epoll if hasattr(select, "epoll") else eventio._poll
        assert type(p) is expected
    finally:
        p.close()


def test_socket_becomes_readable(poller: Any, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    assert poller.register(a, READ | ERR) == a.fileno()
    assert as_dict(poller.poll(0)) == {}
    b.send(b"x")
    events = as_dict(poller.poll(1))
    assert events[a.fileno()] & READ
    assert not events[a.fileno()] & WRITE


def test_writable_and_int_descriptors(poller: Any, pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    poller.register(a.fileno(), WRITE)
    events = as_dict(poller.poll(1))
    assert events == {a.fileno(): WRITE}


def test_register_again_replaces_the_mask(poller: Any, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    poller.register(a, WRITE)
    poller.register(a, READ)
    assert as_dict(poller.poll(0)) == {}  # no longer watched for writing
    b.send(b"x")
    assert as_dict(poller.poll(1))[a.fileno()] & READ
    poller.register(a, READ | WRITE)
    assert as_dict(poller.poll(1))[a.fileno()] & (READ | WRITE) == READ | WRITE


def test_unregister(poller: Any, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    poller.register(a, READ)
    b.send(b"x")
    poller.unregister(a)
    assert as_dict(poller.poll(0)) == {}
    poller.unregister(a)  # twice: ignored
    poller.unregister(12345)  # never registered: ignored


def test_pipe_hangup_is_reported(poller: Any) -> None:
    r, w = os.pipe()
    try:
        poller.register(r, READ | ERR)
        os.write(w, b"data")
        assert as_dict(poller.poll(1))[r] & READ
        os.close(w)
        w = -1
        os.read(r, 10)
        # End of file: readable (select) or hang-up (epoll/poll), never silent.
        assert as_dict(poller.poll(1))[r] & (READ | ERR)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def test_timeout_none_and_positive_wait_for_events(poller: Any,
                                                   pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    poller.register(a, READ)
    b.send(b"x")
    assert as_dict(poller.poll(None))[a.fileno()] & READ
    assert as_dict(poller.poll(0.001))[a.fileno()] & READ


def test_select_drops_closed_descriptors() -> None:
    p = eventio._select()
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        p.register(a, READ)
        p.register(c, READ)
        fd = a.fileno()
        a.close()
        assert p.poll(0) is None  # select refused the closed descriptor...
        assert fd not in p._rfd  # ...which is removed, the rest kept
        assert c.fileno() in p._rfd
        d.send(b"x")
        assert as_dict(p.poll(1)) == {c.fileno(): READ}
    finally:
        for s in (a, b, c, d):
            s.close()
        p.close()


@pytest.mark.skipif(not hasattr(select, "poll"), reason="select.poll is not available here")
def test_poll_reports_closed_descriptors_as_errors() -> None:
    p = eventio._poll()
    a, b = socket.socketpair()
    try:
        p.register(a, READ)
        fd = a.fileno()
        a.close()
        assert as_dict(p.poll(1)) == {fd: ERR}  # POLLNVAL
        p.unregister(fd)
        assert as_dict(p.poll(0)) == {}
    finally:
        b.close()
        p.close()


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux only")
def test_epoll_forgets_closed_descriptors_and_refuses_bad_ones() -> None:
    p = eventio._epoll()
    a, b = socket.socketpair()
    try:
        p.register(a, READ)
        fd = a.fileno()
        a.close()
        b.close()
        assert as_dict(p.poll(0)) == {}
        p.unregister(fd)  # closed: ignored
        with pytest.raises(OSError) as info:
            p.register(fd, READ)
        assert info.value.errno in SELECT_BAD_FD
        with pytest.raises(ValueError):
            p.register(-1, READ)
    finally:
        p.close()
