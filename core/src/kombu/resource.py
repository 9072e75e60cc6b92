"""Resource pools: the generic :class:`Resource`, connection and channel pools.

A pool hands out at most ``limit`` resources at a time (any number when the
limit is ``None`` or 0) and reuses the most recently released one first.
Free slots hold ``lazy(pool.new)`` placeholders, turned into resources on
first acquire.

Every slot of a limited pool is always somewhere: a free resource or a
``lazy`` placeholder in the queue, a resource in use, or one being created
(``_pending``).  So taking from and giving back to the queue need no lock
when nobody waits (``list.pop``/``append`` and ``set.add``/``remove`` are
atomic under the GIL); waiting, handing over and resizing take the queue's mutex.

- Releasing a resource twice, or one the pool no longer tracks (after
  :meth:`Resource.force_close_all` or a fork), does nothing.
- A blocking acquire that times out raises ``PoolTimeout``, a subclass of
  both the pool's ``LimitExceeded`` and :exc:`TimeoutError`.
- Shrinking refuses only when the new limit is below the number in use; a
  resource released while the pool is over its limit is closed, not kept.
- Placeholders go below idle resources, and shrinking drops the least
  recently used first, so idle resources are always reused first.
- After :func:`os.fork` the child forgets every resource of the parent (it
  neither uses nor closes them) and the pool stays usable.  Pass
  ``close_after_fork=False`` to opt out.
- No thread starves.  A release wakes the longest waiting thread; once that
  thread has waited :data:`STARVATION_SECONDS`, releases go straight to it.
  (Until then anyone may take a released resource, which keeps a busy pool
  fast: the same trade as Go's ``sync.Mutex``.)

The lock-free fast path relies on the GIL; see the project's differences
document on free-threaded CPython.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from queue import LifoQueue
from time import monotonic
from typing import TYPE_CHECKING, Any

from kombu import exceptions
from kombu.log import get_logger
from kombu.utils.compat import register_after_fork
from kombu.utils.functional import lazy

if TYPE_CHECKING:
    from kombu.connection import Connection

__all__ = ("ChannelPool", "ConnectionPool", "Resource", "exit_pooled")

logger = get_logger(__name__)


class _ConnectionPoolTimeout(exceptions.PoolTimeout, exceptions.ConnectionLimitExceeded):
    """A connection pool acquire timed out (kombu raised ConnectionLimitExceeded)."""


class _ChannelPoolTimeout(exceptions.PoolTimeout, exceptions.ChannelLimitExceeded):
    """A channel pool acquire timed out (kombu raised ChannelLimitExceeded)."""


#: A thread that has waited this long for a resource gets the next one released.
STARVATION_SECONDS = 0.005


class _Waiter:
    """A thread blocked in :meth:`Resource.acquire`; ``gate`` is released to wake it."""

    __slots__ = ("gate", "item", "since")

    def __init__(self) -> None:
        self.gate = threading.Lock()
        self.gate.acquire()
        self.item: Any = _NOTHING
        self.since = monotonic()

    def wake(self, item: Any) -> None:
        """Hand ``item`` over (or ``_RECHECK``); wakes the thread once."""
        woken = self.item is not _NOTHING
        self.item = item
        if not woken:
            self.gate.release()


#: Nothing handed over yet.
_NOTHING: Any = object()
#: Handed over: a free slot, counted as pending; create a resource in it.
_SLOT: Any = object()
#: Woken without a hand-over: look at the pool again.
_RECHECK: Any = object()


def _check_limit(limit: Any) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"A pool limit must be an int or None, not {limit!r}")
    if limit < 0:
        raise ValueError(f"A pool limit must be >= 0 (0 or None means no limit), not {limit}")


class Resource:
    """A pool of resources.

    Subclasses define :meth:`new` and may override :meth:`prepare`,
    :meth:`release_resource`, :meth:`close_resource` and
    :meth:`collect_resource`.

    :param limit: the most resources in use at a time; ``None`` or 0 for
        no limit (then every acquire creates a resource, and release
        closes it).
    :param preload: how many resources to create now, when the pool is
        made (at most ``limit``; a warning, not an error, if the broker is
        down); the other slots are filled on first use.
    :param close_after_fork: forget the resources in a forked child
        (default ``True``).
    """

    #: Raised by a non-blocking acquire when every resource is in use.
    LimitExceeded: type[exceptions.LimitExceeded] = exceptions.LimitExceeded
    #: Raised by a blocking acquire that times out.
    PoolTimeout: type[exceptions.PoolTimeout] = exceptions.PoolTimeout
    close_after_fork = True

    def __init__(self, limit: int | None = None, preload: int | None = None,
                 close_after_fork: bool | None = None) -> None:
        _check_limit(limit)
        self._limit = limit
        self.preload = preload or 0
        self._closed = False
        if close_after_fork is not None:
            self.close_after_fork = close_after_fork
        self._reset_state()
        if self.close_after_fork:
            register_after_fork(self, Resource._forget_after_fork)
        self.setup()
        if self.preload:
            self._preload()

    def _reset_state(self) -> None:
        #: Free resources and placeholders; the top is handed out next.
        self._resource: LifoQueue[Any] = LifoQueue()
        #: The resources in use.
        self._dirty: set[Any] = set()
        self._pending = 0  # resources being created or prepared
        #: Threads blocked in acquire(), longest waiting first.
        self._waiters: deque[_Waiter] = deque()

    def _forget_after_fork(self) -> None:
        self._reset_state()
        self.setup()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} limit={self._limit} in_use={len(self._dirty)} "
                f"free={len(self._resource.queue)} at {id(self):#x}>")

    # -- subclass hooks -------------------------------------------------------
    def new(self) -> Any:
        """Create a resource (or a :class:`~kombu.utils.functional.lazy` one)."""
        raise NotImplementedError(f"{type(self).__name__} must define new()")

    def setup(self) -> None:
        """Fill the free slots with ``lazy(self.new)`` placeholders."""
        if not self._limit:
            return
        q = self._resource
        with q.mutex:
            free = self._limit - len(q.queue) - len(self._dirty) - self._pending
            if free > 0:
                # below the idle resources, so that those are reused first
                q.queue[:0] = [lazy(self.new) for _ in range(free)]

    def _preload(self) -> None:
        """Replace the top ``preload`` placeholders with resources made ready now.

        Best effort, as the pool is lazy anyway: when one cannot be made (the
        broker is down), a warning says why and the rest stay placeholders.
        """
        queue = self._resource.queue
        for i in range(1, min(self.preload, len(queue)) + 1):
            if not isinstance(queue[-i], lazy):
                continue
            resource = None
            try:
                resource = self.prepare(queue[-i])
                resource = self.preload_resource(resource)
            except Exception as exc:  # noqa: BLE001 - the pool still works, lazily
                if resource is not None:
                    self.close_resource(resource)
                logger.warning("%r preloaded %d of %d resources: %r; the others are "
                               "created on first use", self, i - 1, self.preload, exc)
                return
            self._adopt(resource)
            queue[-i] = resource

    def _prepare(self, resource: Any, block: bool, timeout: float | None) -> Any:
        """:meth:`prepare`, told how the acquire in progress may wait (for
        pools whose resources need another pool's, as ProducerPool's do)."""
        return self.prepare(resource)

    def preload_resource(self, resource: Any) -> Any:
        """Finish a resource created by ``preload`` (ConnectionPool connects it)."""
        return resource

    def prepare(self, resource: Any) -> Any:
        """Make ``resource`` ready for use; evaluates placeholders."""
        while isinstance(resource, lazy):
            resource = resource.evaluate()
        return resource

    def release_resource(self, resource: Any) -> None:
        """Called when ``resource`` went back to the pool."""

    def close_resource(self, resource: Any) -> None:
        """Close ``resource`` (it leaves the pool)."""
        resource.close()

    def collect_resource(self, resource: Any) -> None:
        """Forget ``resource`` when the pool is reset or shrunk."""

    def _adopt(self, resource: Any) -> None:
        """Tie a new resource to the pool, once: ``resource.release()`` returns it."""
        try:
            resource.release = partial(self.release, resource)
        except AttributeError:  # no instance attributes: use pool.release(obj)
            pass

    # -- acquire and release --------------------------------------------------
    def acquire(self, block: bool = False, timeout: float | None = None) -> Any:
        """Take a resource from the pool.

        :param block: when every resource is in use, wait for one instead
            of raising ``LimitExceeded``.
        :param timeout: the longest wait in seconds when ``block`` is true;
            ``None`` waits as long as it takes.
        :raises LimitExceeded: all in use and ``block`` is false.
        :raises PoolTimeout: all still in use after ``timeout`` seconds.
        """
        if self._closed:
            raise RuntimeError(f"acquire() on a closed pool {self!r}: create a new pool")
        limit = self._limit
        started = 0.0 if timeout is None else monotonic()
        if not limit:
            resource = self._prepare(self.new(), block, timeout)
            self._adopt(resource)
            with self._resource.mutex:
                self._dirty.add(resource)
            return resource
        q = self._resource
        try:
            # The fast path, without the mutex: list.pop() and set.add() are
            # atomic, and a resource is always in the queue or in use.
            item = q.queue.pop()
        except IndexError:
            with q.mutex:
                item = q.queue.pop() if q.queue else self._wait(block, timeout)
                if item is _SLOT:  # counted as pending by the hand-off
                    item = None
                elif item is None or isinstance(item, lazy):
                    self._pending += 1
                else:
                    self._dirty.add(item)
            placeholder = item is None or isinstance(item, lazy)
        else:
            placeholder = isinstance(item, lazy)
            if placeholder:
                with q.mutex:
                    self._pending += 1
            else:
                self._dirty.add(item)
        if timeout is not None:  # what is left of it, for _prepare
            timeout = max(timeout - (monotonic() - started), 0.0)
        if placeholder:
            return self._create(item, block, timeout)
        try:
            resource = self._prepare(item, block, timeout)
        except BaseException:
            self.release(item)
            raise
        if resource is not item:
            self._adopt(resource)
            with q.mutex:
                self._dirty.discard(item)
                self._dirty.add(resource)
        return resource

    def _wait(self, block: bool, timeout: float | None) -> Any:
        """Wait (holding the mutex) for a free resource.

        Returns a free resource or placeholder, ``None`` (a free slot) or
        ``_SLOT`` (a free slot already counted as pending).
        """
        if not block:
            raise self.LimitExceeded(
                f"All {self._limit} resources of {self!r} are in use: release one, "
                f"raise the limit or pass block=True (and a timeout) to wait")
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, not {timeout}")
        deadline = None if timeout is None else monotonic() + timeout
        mutex = self._resource.mutex
        waiters = self._waiters
        queue = self._resource.queue
        waiter = _Waiter()
        waiters.append(waiter)
        while True:
            if queue:  # released without the mutex before we were in line
                waiters.remove(waiter)
                return queue.pop()
            mutex.release()
            try:
                if deadline is None:
                    waiter.gate.acquire()
                else:
                    waiter.gate.acquire(timeout=max(deadline - monotonic(), 0))
            finally:
                mutex.acquire()
            item = waiter.item
            if item is not _NOTHING and item is not _RECHECK:
                return item  # handed over (and out of the queue of waiters)
            waiter.item = _NOTHING
            if self._closed:
                waiters.remove(waiter)
                raise RuntimeError(f"The pool {self!r} was closed while waiting")
            if not self._limit:  # the pool became unlimited
                waiters.remove(waiter)
                return queue.pop() if queue else None
            if queue:
                continue  # take it at the top of the loop
            if item is _NOTHING:  # timed out
                waiters.remove(waiter)
                raise self.PoolTimeout(
                    f"No resource of {self!r} was released within {timeout:g} s: "
                    f"release them sooner, raise the limit or wait longer")

    def _hand_over(self, item: Any) -> bool:
        """Give ``item`` to the longest waiting thread, if any (holding the mutex)."""
        if not self._waiters:
            return False
        if isinstance(item, lazy):
            item = _SLOT  # the waiter creates a resource in the placeholder's slot
        if item is _SLOT:
            self._pending += 1
        else:
            self._dirty.add(item)
        self._waiters.popleft().wake(item)
        return True

    def _put_back(self, item: Any) -> None:
        """Return a free ``item`` to the pool or to a starving waiter (holding the mutex)."""
        waiters = self._waiters
        if waiters and monotonic() - waiters[0].since >= STARVATION_SECONDS:
            self._hand_over(item)
            return
        self._resource.queue.append(item)
        if waiters:
            waiters[0].wake(_RECHECK)

    def _wake_all(self) -> None:
        """Make every waiting thread look at the pool again (holding the mutex)."""
        for waiter in self._waiters:
            waiter.wake(_RECHECK)

    def _create(self, placeholder: Any, block: bool = True,
                timeout: float | None = None) -> Any:
        q = self._resource
        try:
            resource = self._prepare(self.new() if placeholder is None else placeholder,
                                     block, timeout)
        except BaseException:
            with q.mutex:
                self._pending -= 1
                if self._limit:
                    self._put_back(lazy(self.new) if placeholder is None else placeholder)
            raise
        self._adopt(resource)
        with q.mutex:
            self._pending -= 1
            self._dirty.add(resource)
        return resource

    def release(self, resource: Any) -> None:
        """Give ``resource`` back; does nothing if it is not in use."""
        q = self._resource
        try:
            self._dirty.remove(resource)
        except KeyError:
            return  # released twice, or forgotten by a reset or fork
        queue = q.queue
        limit = self._limit or 0
        if not self._waiters and len(queue) + len(self._dirty) + self._pending < limit:
            queue.append(resource)  # the fast path, without the mutex
            if self._waiters:  # one got in line meanwhile: make sure it looks
                with q.mutex:
                    if self._waiters:
                        self._waiters[0].wake(_RECHECK)
            self.release_resource(resource)
            return
        with q.mutex:
            keep = len(queue) + len(self._dirty) + self._pending < (self._limit or 0)
            if keep:
                self._put_back(resource)
            elif self._waiters:
                self._waiters[0].wake(_RECHECK)  # a slot may be free after a shrink
        if keep:
            self.release_resource(resource)
        else:
            self.close_resource(resource)

    def replace(self, resource: Any) -> None:
        """Close a defective ``resource``; the pool creates a new one when needed."""
        q = self._resource
        with q.mutex:
            if resource in self._dirty:
                self._dirty.discard(resource)
                if self._limit and not self._hand_over(_SLOT):
                    q.queue.insert(0, lazy(self.new))  # keep the slot
        self.close_resource(resource)

    # -- pool management ------------------------------------------------------
    def force_close_all(self, close_pool: bool = True) -> None:
        """Collect every resource, in use or not, and forget them.

        :param close_pool: also close the pool (``acquire`` then raises);
            with ``False`` the pool creates new resources on demand.
        """
        if self._closed:
            return
        self._closed = close_pool
        q = self._resource
        with q.mutex:
            items = list(self._dirty)
            items.extend(q.queue)
            self._dirty.clear()
            q.queue.clear()
            self._wake_all()
        if not close_pool:
            self.setup()
        self._collect_all(items)

    def _collect_all(self, items: list[Any]) -> None:
        """Collect every one of ``items``; then raise the first error, if any."""
        error: BaseException | None = None
        for item in items:
            try:
                self.collect_resource(item)
            except Exception as exc:  # noqa: BLE001  (collect the others first)
                error = error or exc
        if error is not None:
            raise error

    def resize(self, limit: int | None, force: bool = False, ignore_errors: bool = False,
               reset: bool = False) -> None:
        """Change the limit.

        A limit below the number of resources in use raises
        :exc:`RuntimeError` unless ``force`` (collect them all, as
        ``reset``) or ``ignore_errors`` (release closes them until the pool
        is within its limit).  ``reset`` collects every resource first.
        """
        _check_limit(limit)
        in_use = len(self._dirty) + self._pending
        if limit and limit < in_use and not ignore_errors:
            if not force:
                raise RuntimeError(
                    f"Cannot shrink {self!r} to {limit}: {in_use} resources are in use. "
                    f"Release them first, or pass force=True to collect them")
            reset = True
        prev = self._limit or 0
        self._limit = limit
        if reset:
            try:
                self.force_close_all(close_pool=False)
            except Exception:
                if not ignore_errors:
                    raise
        self.setup()
        if (limit or 0) < prev:
            self._shrink_down()
        with self._resource.mutex:
            self._wake_all()

    def _shrink_down(self) -> None:
        """Drop free resources, least recently used first, down to the limit."""
        q = self._resource
        with q.mutex:
            queue = q.queue
            excess = len(queue) + len(self._dirty) + self._pending - (self._limit or 0)
            dropped = queue[:excess] if excess > 0 else []
            del queue[:len(dropped)]
        self._collect_all(dropped)

    @property
    def limit(self) -> int | None:
        """The most resources in use at a time (setting it resizes the pool)."""
        return self._limit

    @limit.setter
    def limit(self, limit: int | None) -> None:
        self.resize(limit)


class ConnectionPool(Resource):
    """A pool of clones of ``connection``, each connected on first use.

    A pooled connection's ``release()`` (and leaving its ``with`` block)
    gives it back to the pool.
    """

    LimitExceeded = exceptions.ConnectionLimitExceeded
    PoolTimeout = _ConnectionPoolTimeout

    def __init__(self, connection: Connection, limit: int | None = None,
                 preload: int | None = None, close_after_fork: bool | None = None) -> None:
        self.connection = connection
        super().__init__(limit=limit, preload=preload, close_after_fork=close_after_fork)

    def new(self) -> Connection:
        return self.connection.clone()

    def preload_resource(self, resource: Connection) -> Connection:
        return resource.connect()

    def _adopt(self, resource: Connection) -> None:
        resource._pool = self

    def close_resource(self, resource: Connection) -> None:
        resource._close()

    def collect_resource(self, resource: Any, socket_timeout: float | None = 0.1) -> None:
        if not isinstance(resource, lazy):
            resource.collect(socket_timeout)

    @contextmanager
    def acquire_channel(self, block: bool = False) -> Iterator[tuple[Connection, Any]]:
        """``with pool.acquire_channel() as (connection, channel):`` (the default channel)."""
        with self.acquire(block=block) as connection:
            yield connection, connection.default_channel


def exit_pooled(resource: Any, pool: Any, failed: bool) -> bool:
    """Leave a ``with`` block on ``resource``, if ``pool`` lent it out.

    The rule of every pool: a block that raised gives the resource back
    closed (the pool replaces it; the next user gets a new one, connected on
    first use), since what failed may have left it unusable (a dead channel,
    a half-read reply); a block that did not raise gives it back as it is.
    Returns False, doing nothing, when ``resource`` is not in use from ``pool``.
    """
    if pool is None or not isinstance(pool, Resource) or resource not in pool._dirty:
        return False
    if failed:
        pool.replace(resource)
    else:
        pool.release(resource)
    return True


class ChannelPool(Resource):
    """A pool of channels of ``connection``, each created on first use.

    A pooled channel's ``release()`` gives it back to the pool.
    """

    LimitExceeded = exceptions.ChannelLimitExceeded
    PoolTimeout = _ChannelPoolTimeout

    def __init__(self, connection: Connection, limit: int | None = None,
                 preload: int | None = None, close_after_fork: bool | None = None) -> None:
        self.connection = connection
        super().__init__(limit=limit, preload=preload, close_after_fork=close_after_fork)

    def new(self) -> Any:
        return lazy(self.connection.channel)

    def _adopt(self, resource: Any) -> None:
        super()._adopt(resource)
        try:  # lets ``with channel:`` give the channel back (exit_pooled)
            resource._channel_pool = self
        except AttributeError:
            pass
