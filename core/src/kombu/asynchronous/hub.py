"""The event loop (Hub): descriptor callbacks, a timer and "call soon" callbacks in one thread.

Each turn of the loop (one ``next()`` of :meth:`Hub.create_loop`) runs the
callbacks queued with :meth:`Hub.call_soon`, fires the due timers, calls the
``on_tick`` callbacks, then polls the registered descriptors (for no longer
than the next timer is due) and calls the callback of each ready one.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import weakref
from collections.abc import Generator, Iterable, Iterator
from contextlib import suppress
from queue import Empty
from time import monotonic
from types import GeneratorType, TracebackType
from typing import Any, Callable

from vine import Thenable, promise

from kombu.log import get_logger
from kombu.utils.compat import fileno
from kombu.utils.eventio import ERR, READ, SELECT_BAD_FD, WRITE, poll
from kombu.utils.objects import cached_property

from .timer import Timer

__all__ = ("Hub", "get_event_loop", "set_event_loop")

logger = get_logger(__name__)

#: The loop :func:`get_event_loop` returns (one per process).
_current_loop: Hub | None = None

W_UNKNOWN_EVENT = "Received unknown event %r for fd %r, please contact support!"


class Stop(BaseException):
    """Raised inside the loop to end :meth:`Hub.run_forever`."""


def _raise_stop_error() -> None:
    raise Stop()


def get_event_loop() -> Hub | None:
    """Return the current event loop, or ``None``."""
    return _current_loop


def set_event_loop(loop: Hub | None) -> Hub | None:
    """Make ``loop`` the current event loop and return it."""
    global _current_loop
    _current_loop = loop
    return loop


#: Every hub of this process, so that a forked child can mark them (see Hub.poller).
_hubs: weakref.WeakSet[Hub] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for hub in list(_hubs):
        hub._inherited = True


if hasattr(os, "register_at_fork"):  # pragma: no branch
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Waker:
    """A socket pair whose reading end is polled, so other threads can interrupt a poll."""

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)
        self.pid = os.getpid()

    def fileno(self) -> int:
        return self.reader.fileno()

    def wake(self) -> None:
        with suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self.writer.send(b"\0")

    def drain(self) -> None:
        with suppress(OSError):
            while self.reader.recv(4096):
                pass

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


class Hub:
    """An event loop: readers and writers by file descriptor, a :class:`Timer`, ready callbacks.

    Arguments:
        timer: the timer to use (a new :class:`Timer` by default).
    """

    #: Event flag: the descriptor is readable.
    READ = READ
    #: Event flag: the descriptor is writable.
    WRITE = WRITE
    #: Event flag: error or hang-up on the descriptor.
    ERR = ERR

    def __init__(self, timer: Timer | None = None) -> None:
        self.timer = timer if timer is not None else Timer()
        #: ``{fd: (callback, args)}``; ``None`` for consolidated descriptors.
        self.readers: dict[int, Any] = {}
        #: ``{fd: (callback, args)}``; ``None`` for consolidated descriptors.
        self.writers: dict[int, Any] = {}
        #: Callables called (without arguments) at every turn, before polling.
        self.on_tick: set[Callable[[], Any]] = set()
        #: Callables called with the hub when it is closed or reset.
        self.on_close: set[Callable[[Hub], Any]] = set()
        #: Descriptors whose write readiness goes, as one list per turn, to
        #: :attr:`consolidate_callback` instead of a callback per descriptor.
        self.consolidate: set[int] = set()
        self.consolidate_callback: Callable[[list[int]], Any] | None = None
        #: Exception classes that a timer callback may raise out of the loop
        #: (others are logged).
        self.propagate_errors: tuple[type[BaseException], ...] = ()
        self._ready: set[Any] = set()
        self._ready_lock = threading.Lock()
        self._waker: _Waker | None = None
        self._wake_pending = False
        self._loop_thread: int | None = None
        self._running = False
        self._loop: Generator[None, None, None] | None = None
        self._poller: Any = None
        # Set in a forked child: the poller (an epoll set, say) is shared
        # with the parent and must not be changed from here.
        self._inherited = False
        self._create_poller()
        _hubs.add(self)

    # -- poller ----------------------------------------------------------------
    @property
    def poller(self) -> Any:
        """The poller (:func:`kombu.utils.eventio.poll`); created again after :meth:`close`."""
        if self._inherited:
            self._own_poller()
        elif self._poller is None:
            self._create_poller()
        return self._poller

    @poller.setter
    def poller(self, value: Any) -> None:
        self._poller = value

    def _create_poller(self) -> None:
        self._poller = poll()
        waker = self._waker
        if waker is not None and waker.pid == os.getpid():
            self._poller.register(waker.fileno(), READ)

    def _own_poller(self) -> None:
        """In a forked child: replace the parent's poller with one holding our descriptors."""
        self._inherited = False
        inherited, self._poller = self._poller, None
        if inherited is not None:
            with suppress(OSError, ValueError):
                inherited.close()  # this process's descriptor of it only
        self._create_poller()
        for fd in set(self.readers) | set(self.writers):
            mask = (READ | ERR if fd in self.readers else 0) | (WRITE if fd in self.writers else 0)
            with suppress(OSError, ValueError):
                self._poller.register(fd, mask)

    def _close_poller(self) -> None:
        if self._poller is not None:
            self._poller.close()
            self._poller = None

    def _create_waker(self) -> _Waker:
        # Made by the loop, so a hub that never runs holds no sockets; a new
        # one after fork, so parent and child never share it.
        poller = self.poller  # a forked child gets its own here
        old = self._waker
        if old is not None:
            if old.pid == os.getpid():
                self._unregister(old.fileno())
            old.close()  # in a child: only the child's descriptors
        waker = self._waker = _Waker()
        with self._ready_lock:
            self._wake_pending = False
        poller.register(waker.fileno(), READ)
        return waker

    def reset(self) -> None:
        """Drop every reader and writer and start over with a new poller (the timer is kept)."""
        self._close()
        self._create_poller()

    def close(self, *args: Any) -> None:
        """Drop every reader and writer, close the poller, run ``on_close`` and the ready callbacks."""
        try:
            self._close()
        finally:
            if self._waker is not None:
                self._waker.close()
                self._waker = None

    def _close(self) -> None:
        for fd in list(self.readers):
            self._unregister(fd)
        self.readers.clear()
        for fd in list(self.writers):
            self._unregister(fd)
        self.writers.clear()
        self.consolidate.clear()
        self._close_poller()
        for callback in list(self.on_close):
            callback(self)
        # Work queued before closing still runs (acknowledgements, say), all
        # of it: a failure (a reader of a connection closed meanwhile) is
        # logged.  What it queues in turn is left for the next loop.
        for item in self._pop_ready():
            if item:
                try:
                    item()
                except Exception as exc:  # noqa: BLE001 - logged; the rest must still run
                    self.on_callback_error(item, exc)
        if _current_loop is self:
            set_event_loop(None)

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        self.close()

    # -- descriptors -------------------------------------------------------------
    def add(self, fd: Any, callback: Any, flags: int, args: Iterable[Any] = (),
            consolidate: bool = False) -> None:
        """Call ``callback(*args)`` when ``fd`` is ready for ``flags`` (READ and/or WRITE, ERR).

        A flag with READ makes a reader, otherwise a writer; a descriptor may
        be both.  ``callback`` may be a generator, advanced once per event.
        With ``consolidate`` the descriptor's write events go to
        :attr:`consolidate_callback` instead.
        """
        fd = fileno(fd)
        reading = bool(flags & READ)
        mask = flags
        if fd in (self.writers if reading else self.readers):
            mask |= WRITE if reading else READ | ERR
        try:
            self.poller.register(fd, mask)
        except (ValueError, OSError) as exc:
            if isinstance(exc, ValueError) or getattr(exc, "errno", None) in SELECT_BAD_FD:
                self._remove_from_loop(fd)
            raise
        dest = self.readers if reading else self.writers
        if consolidate:
            self.consolidate.add(fd)
            dest[fd] = None
        else:
            dest[fd] = (callback, tuple(args))

    def add_reader(self, fds: Any, callback: Any, *args: Any) -> None:
        """Call ``callback(*args)`` whenever ``fds`` is readable (or in error)."""
        return self.add(fds, callback, READ | ERR, args)

    def add_writer(self, fds: Any, callback: Any, *args: Any) -> None:
        """Call ``callback(*args)`` whenever ``fds`` is writable."""
        return self.add(fds, callback, WRITE, args)

    def remove(self, fd: Any) -> None:
        """Stop watching ``fd`` altogether (its reader and its writer)."""
        self._remove_from_loop(fileno(fd))

    def remove_reader(self, fd: Any) -> None:
        """Drop the reader of ``fd``; its writer, if any, stays."""
        self._remove_side(fileno(fd), self.writers, WRITE)

    def remove_writer(self, fd: Any) -> None:
        """Drop the writer of ``fd``; its reader, if any, stays."""
        self._remove_side(fileno(fd), self.readers, READ | ERR)

    def _remove_side(self, fd: int, keep: dict[int, Any], keep_flags: int) -> None:
        kept = keep.get(fd, False)
        consolidated = fd in self.consolidate
        try:
            self._remove_from_loop(fd)
        finally:
            if kept is not False:
                if kept is None:
                    self.add(fd, None, keep_flags, consolidate=consolidated)
                else:
                    cb, args = kept
                    self.add(fd, cb, keep_flags, args)

    def _remove_from_loop(self, fd: Any) -> None:
        try:
            self._unregister(fd)
        finally:
            self._discard(fd)

    def _unregister(self, fd: Any) -> None:
        with suppress(AttributeError, KeyError, ValueError, OSError):
            self.poller.unregister(fd)

    def _discard(self, fd: Any) -> None:
        fd = fileno(fd)
        self.readers.pop(fd, None)
        self.writers.pop(fd, None)
        self.consolidate.discard(fd)

    # -- callbacks and timers -----------------------------------------------------
    def call_soon(self, callback: Any, *args: Any) -> Any:
        """Run ``callback(*args)`` at the start of the next turn; returns the promise queued.

        A :class:`vine.Thenable` (a ``promise``) is queued as it is; any other
        callable is wrapped in ``promise(callback, args)``.  Safe to call from
        other threads: it interrupts a loop that is waiting in poll.
        """
        if not isinstance(callback, Thenable):
            callback = promise(callback, args)
        with self._ready_lock:
            self._ready.add(callback)
            wake = not self._wake_pending and threading.get_ident() != self._loop_thread
            if wake:
                self._wake_pending = True
        if wake:
            waker = self._waker
            if waker is not None:
                waker.wake()
        return callback

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` in ``delay`` seconds; returns the timer entry."""
        return self.timer.call_after(delay, callback, args)

    def call_at(self, when: Any, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` at ``when`` (monotonic time or datetime); returns the entry."""
        return self.timer.call_at(when, callback, args)

    def call_repeatedly(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` every ``delay`` seconds; cancel the returned entry to stop."""
        return self.timer.call_repeatedly(delay, callback, args)

    def _pop_ready(self) -> set[Any]:
        """Take (and empty) the set of callbacks queued with :meth:`call_soon`."""
        with self._ready_lock:
            ready, self._ready = self._ready, set()
        return ready

    def on_callback_error(self, callback: Any, exc: BaseException) -> None:
        """Log an exception raised by ``callback``."""
        logger.error("Callback %r raised exception: %r", callback, exc, exc_info=True)

    @cached_property
    def scheduler(self) -> Iterator[tuple[float | None, Any]]:
        """The timer's iterator, shared by every call of :meth:`fire_timers`."""
        return iter(self.timer)

    def fire_timers(self, min_delay: float = 1, max_delay: float = 10, max_timers: int = 10,
                    propagate: tuple[type[BaseException], ...] = ()) -> float:
        """Run up to ``max_timers`` due entries; return how long to poll before the next one.

        Errors are logged, except those in ``propagate``, ``MemoryError``,
        ``AssertionError`` and ``ENOMEM``, which are raised.  The result is
        the wait until the next entry (``min_delay`` when there is none),
        at most ``max_delay``, and ``0`` when entries were left due.
        """
        timer = self.timer
        if not (timer and timer._queue):
            return min(min_delay, max_delay)
        delay: float | None = None
        for _ in range(max_timers):
            delay, entry = next(self.scheduler)
            if entry is None:
                break
            try:
                entry()
            except propagate:
                raise
            except (MemoryError, AssertionError):
                raise
            except OSError as exc:
                if exc.errno == errno.ENOMEM:
                    raise
                logger.error("Error in timer: %r", exc, exc_info=True)
            except Exception as exc:
                logger.error("Error in timer: %r", exc, exc_info=True)
        else:
            # Stopped by max_timers: poll without waiting if more are due.
            queue = timer._queue
            if queue and queue[0][0] <= monotonic():
                return 0
        return min(delay or min_delay, max_delay)

    # -- running -----------------------------------------------------------------
    def stop(self) -> None:
        """End :meth:`run_forever` at the start of the next turn."""
        self.call_soon(_raise_stop_error)

    def run_forever(self) -> None:
        """Run turns until :meth:`stop` (or an exception)."""
        self._running = True
        try:
            while True:
                try:
                    self.run_once()
                except Stop:
                    break
        finally:
            self._running = False

    def run_once(self) -> None:
        """Run one turn of :attr:`loop`."""
        try:
            next(self.loop)
        except StopIteration:
            self._loop = None
        except BaseException:
            self._loop = None  # the generator is finished: start a new one next time
            raise

    @property
    def loop(self) -> Generator[None, None, None]:
        """The loop generator of :meth:`run_once` (created on first use)."""
        if self._loop is None:
            self._loop = self.create_loop()
        return self._loop

    def _run_ready(self) -> None:
        todo = self._pop_ready()
        while todo:
            item = todo.pop()
            if not item:
                continue
            try:
                item()
            except BaseException:
                # Keep what was not run yet for the next turn.
                if todo:
                    with self._ready_lock:
                        self._ready |= todo
                raise

    def create_loop(self, generator: type = GeneratorType, **kwargs: Any) -> Generator[None, None, None]:
        """Return a generator that runs one turn of the loop per ``next()``.

        An exception raised by a callback (other than ``queue.Empty``, which
        means "nothing to read") ends the generator and reaches the caller.
        The other keyword arguments kombu accepted here (``sleep``, ``min``,
        ...) are accepted and ignored.
        """
        waker = self._waker
        if waker is None or waker.pid != os.getpid():
            waker = self._create_waker()
        self._loop_thread = threading.get_ident()
        return self._turns(waker, generator)

    def _turns(self, waker: _Waker, generator: type) -> Generator[None, None, None]:
        readers, writers = self.readers, self.writers
        consolidate = self.consolidate
        scheduled = self.timer._queue
        waker_fd = waker.fileno()

        while True:
            self._run_ready()

            if scheduled:
                poll_timeout = self.fire_timers(propagate=self.propagate_errors)
            else:
                poll_timeout = 1

            for tick_callback in list(self.on_tick):
                tick_callback()

            if self._ready:
                # Callbacks queued in this turn (a reader re-queueing itself
                # while it has buffered frames) run without waiting for I/O.
                poll_timeout = 0
            elif not (readers or writers):
                # Nothing to watch yet (start-up): wait briefly, but a
                # call_soon from another thread still wakes us.
                poll_timeout = min(poll_timeout, 0.1)
            try:
                events = self.poller.poll(poll_timeout)
            except ValueError:  # the poller was closed under us
                return

            to_consolidate: list[int] = []
            for fd, event in events or ():
                if fd == waker_fd:
                    self._on_wakeup(waker)
                    continue
                if fd in consolidate and writers.get(fd) is None:
                    to_consolidate.append(fd)
                    continue
                self._dispatch(fd, event, generator)
            if to_consolidate and self.consolidate_callback is not None:
                self.consolidate_callback(to_consolidate)
            yield

    def _dispatch(self, fd: int, event: int, generator: type) -> None:
        """Call the callbacks of ``fd`` for ``event``; forget ``fd`` if it has none."""
        called = False
        if event & READ:
            entry = self.readers.get(fd)
            if entry is not None:
                called = True
                self._call(fd, entry, generator)
        if event & WRITE:
            entry = self.writers.get(fd)  # looked up now: the reader may have removed it
            if entry is not None:
                called = True
                self._call(fd, entry, generator)
        if not called:
            if not event & ERR:
                logger.info(W_UNKNOWN_EVENT, event, fd)
            # An error or hang-up goes to whichever callback the fd has.
            entry = self.readers.get(fd) or self.writers.get(fd)
            if entry is not None:
                self._call(fd, entry, generator)
            else:
                self._remove_stale(fd, event)

    def _call(self, fd: int, entry: tuple[Any, tuple[Any, ...]], generator: type) -> None:
        cb: Any = entry[0]
        args = entry[1]
        if isinstance(cb, generator):
            try:
                next(entry[0])
            except StopIteration:
                pass
            except OSError as exc:
                if exc.errno not in SELECT_BAD_FD:
                    raise
                self.remove(fd)
            except Exception:
                self.remove(fd)
                raise
        else:
            try:
                cb(*args)
            except Empty:
                pass

    def _remove_stale(self, fd: int, event: int) -> None:
        if event & READ and fd in self.writers:
            self.remove_reader(fd)
        elif event & WRITE and fd in self.readers:
            self.remove_writer(fd)
        else:
            self.remove(fd)

    def _on_wakeup(self, waker: _Waker) -> None:
        # Drain before clearing the flag, so a wake-up sent in between is
        # not lost with the flag left set.
        waker.drain()
        with self._ready_lock:
            self._wake_pending = False

    # -- description ---------------------------------------------------------------
    def repr_active(self) -> str:
        """Describe the readers and writers (see :mod:`kombu.asynchronous.debug`)."""
        from .debug import repr_active

        return repr_active(self)

    def repr_events(self, events: Any) -> str:
        """Describe poll events (see :mod:`kombu.asynchronous.debug`)."""
        from .debug import repr_events

        return repr_events(self, events or [])

    def __repr__(self) -> str:
        return f"<Hub@{id(self):#x}: R:{len(self.readers)} W:{len(self.writers)}>"
