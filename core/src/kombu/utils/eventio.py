"""Readiness polling for the event loop: one interface over epoll, kqueue, poll and select.

``poll()`` returns a poller for this platform (epoll on Linux; kqueue on
NetBSD; ``select.poll`` elsewhere where it exists; ``select.select`` as the
last resort, and always under eventlet or gevent).  Every poller has

- ``register(fd, events)``: watch ``fd`` (an int or an object with
  ``fileno()``) for ``events``, a mask of :data:`READ`, :data:`WRITE` and
  :data:`ERR`; registering a watched descriptor again replaces its mask;
- ``unregister(fd)``: stop watching (unknown or closed descriptors are ignored);
- ``poll(timeout)``: wait up to ``timeout`` seconds (``None``: no limit) and
  return ``[(fd, events), ...]``, or ``None`` when a signal interrupted the wait;
- ``close()``.
"""

from __future__ import annotations

import errno
import math
import select
import sys
from numbers import Integral
from typing import Any, Callable, Optional

from kombu.utils.compat import detect_environment, fileno

__all__ = ("ERR", "POLL_ERR", "POLL_READ", "POLL_WRITE", "READ", "SELECT_BAD_FD", "WRITE", "poll")

#: The descriptor can be read without blocking.
READ = POLL_READ = 0x001
#: The descriptor can be written without blocking.
WRITE = POLL_WRITE = 0x004
#: An error or hang-up on the descriptor (read it to find out which).
ERR = POLL_ERR = 0x008 | 0x010

#: ``errno`` values meaning "this is not a usable descriptor".
SELECT_BAD_FD: set[int] = {errno.EBADF}
if hasattr(errno, "WSAENOTSOCK"):  # pragma: no cover - Windows
    SELECT_BAD_FD.add(errno.WSAENOTSOCK)

PollResult = Optional[list[tuple[int, int]]]

_epoll_cls: Any = getattr(select, "epoll", None)
_kqueue_cls: Any = getattr(select, "kqueue", None)
_poll_fn: Any = getattr(select, "poll", None)
_kq: Any = select  # the kqueue names exist only on BSD and macOS

#: kqueue's classes (None where the platform has no kqueue).
kqueue: Any = _kqueue_cls
kevent: Any = getattr(select, "kevent", None)

# kqueue flags, filters and notes, as BSD's <sys/event.h> numbers them where
# ``select`` lacks them (so code that imports them works on every platform).
_KQ_FALLBACKS = {
    "KQ_EV_ADD": 0x0001, "KQ_EV_DELETE": 0x0002, "KQ_EV_ENABLE": 0x0004,
    "KQ_EV_CLEAR": 0x0020, "KQ_EV_ERROR": 0x4000, "KQ_EV_EOF": 0x8000,
    "KQ_FILTER_READ": -1, "KQ_FILTER_WRITE": -2, "KQ_FILTER_AIO": -3,
    "KQ_FILTER_VNODE": -4, "KQ_FILTER_PROC": -5, "KQ_FILTER_SIGNAL": -6,
    "KQ_FILTER_TIMER": -7, "KQ_NOTE_LOWAT": 0x01, "KQ_NOTE_DELETE": 0x01,
    "KQ_NOTE_WRITE": 0x02, "KQ_NOTE_EXTEND": 0x04, "KQ_NOTE_ATTRIB": 0x08,
    "KQ_NOTE_LINK": 0x10, "KQ_NOTE_RENAME": 0x20, "KQ_NOTE_REVOKE": 0x40,
}
KQ_EV_ADD: int = getattr(select, "KQ_EV_ADD", _KQ_FALLBACKS["KQ_EV_ADD"])
KQ_EV_DELETE: int = getattr(select, "KQ_EV_DELETE", _KQ_FALLBACKS["KQ_EV_DELETE"])
KQ_EV_ENABLE: int = getattr(select, "KQ_EV_ENABLE", _KQ_FALLBACKS["KQ_EV_ENABLE"])
KQ_EV_CLEAR: int = getattr(select, "KQ_EV_CLEAR", _KQ_FALLBACKS["KQ_EV_CLEAR"])
KQ_EV_ERROR: int = getattr(select, "KQ_EV_ERROR", _KQ_FALLBACKS["KQ_EV_ERROR"])
KQ_EV_EOF: int = getattr(select, "KQ_EV_EOF", _KQ_FALLBACKS["KQ_EV_EOF"])
KQ_FILTER_READ: int = getattr(select, "KQ_FILTER_READ", _KQ_FALLBACKS["KQ_FILTER_READ"])
KQ_FILTER_WRITE: int = getattr(select, "KQ_FILTER_WRITE", _KQ_FALLBACKS["KQ_FILTER_WRITE"])
KQ_FILTER_AIO: int = getattr(select, "KQ_FILTER_AIO", _KQ_FALLBACKS["KQ_FILTER_AIO"])
KQ_FILTER_VNODE: int = getattr(select, "KQ_FILTER_VNODE", _KQ_FALLBACKS["KQ_FILTER_VNODE"])
KQ_FILTER_PROC: int = getattr(select, "KQ_FILTER_PROC", _KQ_FALLBACKS["KQ_FILTER_PROC"])
KQ_FILTER_SIGNAL: int = getattr(select, "KQ_FILTER_SIGNAL", _KQ_FALLBACKS["KQ_FILTER_SIGNAL"])
KQ_FILTER_TIMER: int = getattr(select, "KQ_FILTER_TIMER", _KQ_FALLBACKS["KQ_FILTER_TIMER"])
KQ_NOTE_LOWAT: int = getattr(select, "KQ_NOTE_LOWAT", _KQ_FALLBACKS["KQ_NOTE_LOWAT"])
KQ_NOTE_DELETE: int = getattr(select, "KQ_NOTE_DELETE", _KQ_FALLBACKS["KQ_NOTE_DELETE"])
KQ_NOTE_WRITE: int = getattr(select, "KQ_NOTE_WRITE", _KQ_FALLBACKS["KQ_NOTE_WRITE"])
KQ_NOTE_EXTEND: int = getattr(select, "KQ_NOTE_EXTEND", _KQ_FALLBACKS["KQ_NOTE_EXTEND"])
KQ_NOTE_ATTRIB: int = getattr(select, "KQ_NOTE_ATTRIB", _KQ_FALLBACKS["KQ_NOTE_ATTRIB"])
KQ_NOTE_LINK: int = getattr(select, "KQ_NOTE_LINK", _KQ_FALLBACKS["KQ_NOTE_LINK"])
KQ_NOTE_RENAME: int = getattr(select, "KQ_NOTE_RENAME", _KQ_FALLBACKS["KQ_NOTE_RENAME"])
KQ_NOTE_REVOKE: int = getattr(select, "KQ_NOTE_REVOKE", _KQ_FALLBACKS["KQ_NOTE_REVOKE"])

POLLIN: int = getattr(select, "POLLIN", 0x001)
POLLOUT: int = getattr(select, "POLLOUT", 0x004)
POLLERR: int = getattr(select, "POLLERR", 0x008)
POLLHUP: int = getattr(select, "POLLHUP", 0x010)
POLLNVAL: int = getattr(select, "POLLNVAL", 0x020)


def _errno(exc: BaseException) -> int | None:
    return getattr(exc, "errno", None)


class _epoll:
    """``select.epoll``: its event bits are the same numbers as READ, WRITE and ERR."""

    def __init__(self) -> None:
        self._epoll = _epoll_cls()

    def register(self, fd: Any, events: int) -> int:
        fd = fileno(fd)
        try:
            self._epoll.register(fd, events)
        except OSError as exc:
            if _errno(exc) != errno.EEXIST:
                raise
            self._epoll.modify(fd, events)
        return int(fd)

    def unregister(self, fd: Any) -> None:
        try:
            self._epoll.unregister(fd)
        except (ValueError, KeyError, TypeError):
            pass
        except OSError as exc:
            # ENOENT: not registered; EBADF: closed (the kernel already dropped it).
            if _errno(exc) not in (errno.ENOENT, errno.EPERM, *SELECT_BAD_FD):
                raise

    def poll(self, timeout: float | None) -> PollResult:
        try:
            events: list[tuple[int, int]] = self._epoll.poll(-1 if timeout is None else timeout)
        except OSError as exc:
            if _errno(exc) == errno.EINTR:
                return None
            raise
        return events

    def close(self) -> None:
        self._epoll.close()


class _kqueue:
    """``_kq.kqueue``: one read and/or one write filter per descriptor."""

    def __init__(self) -> None:
        self._kqueue = _kqueue_cls()
        self._active: dict[int, int] = {}
        #: Called with the vnode events of files watched with :meth:`watch_file`.
        self.on_file_change: Callable[[list[Any]], Any] | None = None

    def _filters(self, events: int) -> list[int]:
        filters = []
        if events & WRITE:
            filters.append(_kq.KQ_FILTER_WRITE)
        if events & READ or not filters:
            filters.append(_kq.KQ_FILTER_READ)
        return filters

    def _control(self, fd: int, events: int, flags: int) -> None:
        for kfilter in self._filters(events):
            try:
                self._kqueue.control([_kq.kevent(fd, filter=kfilter, flags=flags)], 0)
            except (ValueError, FileNotFoundError):
                pass

    def register(self, fd: Any, events: int) -> int:
        fd = fileno(fd)
        previous = self._active.get(fd)
        if previous is not None:
            self._control(fd, previous, _kq.KQ_EV_DELETE)
        self._control(fd, events, _kq.KQ_EV_ADD)
        self._active[fd] = events
        return int(fd)

    def unregister(self, fd: Any) -> None:
        try:
            fd = fileno(fd)
        except (OSError, ValueError):
            return
        events = self._active.pop(fd, None)
        if events is not None:
            try:
                self._control(fd, events, _kq.KQ_EV_DELETE)
            except OSError:
                pass

    _W_FFLAGS = (getattr(select, "KQ_NOTE_WRITE", 2) | getattr(select, "KQ_NOTE_EXTEND", 4)
                 | getattr(select, "KQ_NOTE_ATTRIB", 8) | getattr(select, "KQ_NOTE_DELETE", 1))

    def watch_file(self, fd: Any) -> None:
        """Report changes to the file ``fd`` through :attr:`on_file_change`."""
        ev = _kq.kevent(fileno(fd), filter=_kq.KQ_FILTER_VNODE,
                           flags=_kq.KQ_EV_ADD | _kq.KQ_EV_ENABLE | _kq.KQ_EV_CLEAR,
                           fflags=self._W_FFLAGS)
        self._kqueue.control([ev], 0)

    def unwatch_file(self, fd: Any) -> None:
        """Stop reporting changes to the file ``fd``."""
        ev = _kq.kevent(fileno(fd), filter=_kq.KQ_FILTER_VNODE,
                           flags=_kq.KQ_EV_DELETE, fflags=self._W_FFLAGS)
        self._kqueue.control([ev], 0)

    def poll(self, timeout: float | None) -> PollResult:
        try:
            kevents = self._kqueue.control(None, 1000, timeout)
        except OSError as exc:
            if _errno(exc) == errno.EINTR:
                return None
            raise
        events: dict[int, int] = {}
        changes = []
        for kev in kevents:
            fd = kev.ident
            if kev.filter == _kq.KQ_FILTER_READ:
                events[fd] = events.get(fd, 0) | READ
                if kev.flags & _kq.KQ_EV_EOF:
                    events[fd] |= ERR
            elif kev.filter == _kq.KQ_FILTER_WRITE:
                events[fd] = events.get(fd, 0) | (ERR if kev.flags & _kq.KQ_EV_EOF else WRITE)
            elif kev.filter == _kq.KQ_FILTER_VNODE:
                if kev.fflags & getattr(select, "KQ_NOTE_DELETE", 1):
                    self.unregister(fd)
                changes.append(kev)
            if kev.flags & _kq.KQ_EV_ERROR:
                events[fd] = events.get(fd, 0) | ERR
        if changes and self.on_file_change is not None:
            self.on_file_change(changes)
        return list(events.items())

    def close(self) -> None:
        self._kqueue.close()


class _poll:
    """``select.poll``."""

    def __init__(self) -> None:
        self._poller: Any = _poll_fn()

    def register(self, fd: Any, events: int) -> int:
        fd = fileno(fd)
        mask = 0
        if events & READ:
            mask |= POLLIN
        if events & WRITE:
            mask |= POLLOUT
        if events & ERR:
            mask |= POLLERR
        self._poller.register(fd, mask)
        return int(fd)

    def unregister(self, fd: Any) -> None:
        try:
            fd = fileno(fd)
        except OSError as exc:
            # A closed object no longer knows its number; poll() reports the
            # stale descriptor (POLLNVAL) and the loop removes it then.
            if _errno(exc) in SELECT_BAD_FD:
                return
            raise
        try:
            self._poller.unregister(fd)
        except (KeyError, ValueError):
            pass

    def poll(self, timeout: float | None) -> PollResult:
        if timeout is None:
            ms = -1
        else:
            ms = 0 if timeout <= 0 else math.ceil(timeout * 1e3)
        try:
            raw = self._poller.poll(ms)
        except OSError as exc:
            if _errno(exc) == errno.EINTR:
                return None
            raise
        ready = []
        for fd, mask in raw:
            events = 0
            if mask & POLLIN:
                events |= READ
            if mask & POLLOUT:
                events |= WRITE
            if mask & (POLLERR | POLLHUP | POLLNVAL):
                events |= ERR
            ready.append((int(fd) if isinstance(fd, Integral) else fileno(fd), events))
        return ready

    def close(self) -> None:
        self._poller = None


class _select:
    """``select.select``: the portable fallback, and the one that works under green threads."""

    def __init__(self) -> None:
        self._rfd: set[int] = set()
        self._wfd: set[int] = set()
        self._efd: set[int] = set()
        self._all = (self._rfd, self._wfd, self._efd)

    def register(self, fd: Any, events: int) -> int:
        fd = fileno(fd)
        for wanted, fds in ((READ, self._rfd), (WRITE, self._wfd), (ERR, self._efd)):
            if events & wanted:
                fds.add(fd)
            else:
                fds.discard(fd)
        return int(fd)

    def unregister(self, fd: Any) -> None:
        try:
            fd = fileno(fd)
        except OSError as exc:
            if _errno(exc) in SELECT_BAD_FD:
                return
            raise
        for fds in self._all:
            fds.discard(fd)

    def _remove_bad(self) -> None:
        """Unregister the descriptors that ``select`` refuses (closed ones)."""
        for fd in self._rfd | self._wfd | self._efd:
            try:
                select.select([fd], [], [], 0)
            except (OSError, ValueError) as exc:
                if isinstance(exc, ValueError) or _errno(exc) in SELECT_BAD_FD:
                    self.unregister(fd)

    def poll(self, timeout: float | None) -> PollResult:
        try:
            read, write, error = select.select(self._rfd, self._wfd, self._efd, timeout)
        except (OSError, ValueError) as exc:
            if _errno(exc) == errno.EINTR:
                return None
            if isinstance(exc, ValueError) or _errno(exc) in SELECT_BAD_FD:
                self._remove_bad()
                return None
            raise
        events: dict[int, int] = {}
        for fds, flag in ((read, READ), (write, WRITE), (error, ERR)):
            for fd in fds:
                events[fd] = events.get(fd, 0) | flag
        return list(events.items())

    def close(self) -> None:
        for fds in self._all:
            fds.clear()


def _get_poller() -> type:
    if detect_environment() != "default":
        return _select
    if _epoll_cls is not None:
        return _epoll
    if _kqueue_cls is not None and "netbsd" in sys.platform:
        return _kqueue
    if _poll_fn is not None:
        return _poll
    return _select  # pragma: no cover - Windows


def poll(*args: Any, **kwargs: Any) -> Any:
    """Return a new poller, the best one for this platform and environment."""
    return _get_poller()(*args, **kwargs)
