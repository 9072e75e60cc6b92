"""Global connection and producer pools.

``connections[c]`` and ``producers[c]`` return the pool for the connection
``c`` (created on first use with the global limit, 10 by default), where
``c`` is a :class:`~kombu.Connection` or a URL string: equal connections,
and a URL and a connection made from it, share one pool.

:func:`set_limit` honours ``force``, ``reset_after`` and ``ignore_errors``,
changes only the pools that follow the global limit, and checks every pool
before changing any; two threads asking for the same new pool get the same
one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from itertools import chain
from typing import Any, TypeVar

from kombu.connection import Connection
from kombu.log import get_logger
from kombu.messaging import Producer as _Producer
from kombu.resource import ConnectionPool, Resource
from kombu.utils.collections import EqualityDict, eqhash
from kombu.utils.compat import register_after_fork
from kombu.utils.functional import ChannelPromise, lazy

__all__ = ("PoolGroup", "ProducerPool", "connections", "get_limit", "producers",
           "register_group", "reset", "set_limit")

logger = get_logger(__name__)
G = TypeVar("G", bound="PoolGroup")

_limit = [10]
_groups: list[PoolGroup] = []
#: A group created with this limit follows :func:`get_limit`.
use_global_limit: Any = object()
#: Set from ``KOMBU_DISABLE_LIMIT_PROTECTION``: :func:`set_limit` then
#: shrinks pools in use without being asked to ``force``.
disable_limit_protection = os.environ.get("KOMBU_DISABLE_LIMIT_PROTECTION")


class ProducerPool(Resource):
    """A pool of producers, each on a connection taken from ``connections``.

    A producer holds its connection only while it is in use: releasing the
    producer gives the connection back to ``connections`` too.  Acquiring a
    producer waits for a free connection, as in kombu, but a blocking
    acquire's ``timeout`` bounds that wait too (kombu waited without limit,
    so ``acquire(block=True, timeout=...)`` could hang).  Unlike
    kombu, a producer that gets the same connection back (the usual case,
    both pools being LIFO) keeps its channel instead of being revived.

    :param connections: the :class:`~kombu.connection.ConnectionPool`.
    :param Producer: the producer class (default :class:`~kombu.Producer`).
    """

    Producer: type[_Producer] = _Producer

    def __init__(self, connections: ConnectionPool, *args: Any,
                 Producer: type[_Producer] | None = None, **kwargs: Any) -> None:
        self.connections = connections
        if Producer is not None:
            self.Producer = Producer
        super().__init__(*args, **kwargs)

    def _reset_state(self) -> None:
        super()._reset_state()
        #: Free producers whose connection went back to ``connections``.
        self._detached: set[_Producer] = set()

    def _acquire_connection(self, block: bool = True,
                            timeout: float | None = None) -> Connection:
        """A connection for a producer: as kombu, waits for one however the
        producer was asked for, but no longer than a blocking acquire's ``timeout``."""
        return self.connections.acquire(  # type: ignore[no-any-return]
            block=True, timeout=timeout if block else None)

    def _preload(self) -> None:
        """Nothing: a free producer holds no connection (preload ``connections``)."""

    def create_producer(self, block: bool = True, timeout: float | None = None) -> _Producer:
        """A new producer on a connection from the connection pool (waiting
        for one as ``block`` and ``timeout`` allow)."""
        connection = self._acquire_connection(block, timeout)
        try:
            return self.Producer(connection)
        except BaseException:
            connection.release()
            raise

    def new(self) -> lazy:
        return lazy(self.create_producer)

    def _adopt(self, resource: _Producer) -> None:
        if hasattr(type(resource), "_pool"):
            resource._pool = self  # type: ignore[attr-defined]
        else:
            super()._adopt(resource)

    def close_resource(self, resource: Any) -> None:
        """Forget a producer leaving the pool (its connection is already back)."""
        if not isinstance(resource, lazy):
            self._detached.discard(resource)

    collect_resource = close_resource

    def prepare(self, resource: Any) -> _Producer:
        """Evaluate a placeholder; give a released producer a connection again."""
        return self._prepare(resource, True, None)

    def _prepare(self, resource: Any, block: bool, timeout: float | None) -> _Producer:
        """:meth:`prepare`; the wait for a connection follows the acquire's
        ``block`` and ``timeout`` (kombu waited for one without limit)."""
        while isinstance(resource, lazy):  # a slot: lazy(new) -> lazy(create_producer)
            resource = (self.create_producer(block, timeout)
                        if resource._fun == self.create_producer else resource.evaluate())
        producer: _Producer = resource
        detached = self._detached
        if producer in detached or producer._channel is None:
            # Until it has a connection again, the producer stays detached, so
            # that a failed acquire does not release the connection it gave back.
            connection = self._acquire_connection(block, timeout)
            try:
                if not _still_bound(producer, connection):
                    producer.revive(connection)
            except BaseException:
                connection.release()
                detached.add(producer)
                raise
            detached.discard(producer)
        return producer

    def release(self, resource: _Producer) -> None:
        """Give the producer, and its connection, back."""
        if resource not in self._dirty:
            return
        connection = resource.__connection__
        if connection is not None and resource not in self._detached:
            if self._limit:
                self._detached.add(resource)
            connection.release()
        super().release(resource)


def _still_bound(producer: _Producer, connection: Connection) -> bool:
    """Whether ``producer`` is still on ``connection``'s current default channel."""
    if producer.__connection__ is not connection:
        return False
    channel = producer._channel
    return isinstance(channel, ChannelPromise) or (
        channel is not None and channel is connection._default_channel)


_url_keys: dict[str, Any] = {}
_URL_KEYS_MAX = 512


def _key(key: Any) -> Any:
    """The dict key of ``key``: its eqhash, or that of ``Connection(key)`` for a URL."""
    if isinstance(key, str):
        try:
            return _url_keys[key]
        except KeyError:
            h = eqhash(Connection(key))
            if len(_url_keys) >= _URL_KEYS_MAX:
                _url_keys.clear()
            _url_keys[key] = h
            return h
    return eqhash(key)


class PoolGroup(EqualityDict):
    """Pools keyed by connection (or URL), each created on first use.

    :param limit: the limit of new pools; :data:`use_global_limit` follows
        :func:`get_limit`.
    :param close_after_fork: forget every pool in a forked child.
    """

    def __init__(self, limit: Any = None, close_after_fork: bool = True) -> None:
        super().__init__()
        self.limit = limit
        self.close_after_fork = close_after_fork
        self._mutex = threading.Lock()
        if close_after_fork:
            register_after_fork(self, PoolGroup._forget_after_fork)

    def _forget_after_fork(self) -> None:
        self._mutex = threading.Lock()
        dict.clear(self)

    def create(self, resource: Connection, limit: int | None) -> Resource:
        """Create the pool of ``resource`` (a connection)."""
        raise NotImplementedError(f"{type(self).__name__} must define create()")

    def __missing__(self, resource: Any) -> Resource:
        h = _key(resource)
        with self._mutex:
            pool: Resource | None = dict.get(self, h)
            if pool is None:
                limit = get_limit() if self.limit is use_global_limit else self.limit
                if isinstance(resource, str):
                    resource = Connection(resource)
                pool = self.create(resource, limit)
                dict.__setitem__(self, h, pool)
            return pool

    def __getitem__(self, key: Any) -> Any:
        pool = dict.get(self, _key(key))
        return self.__missing__(key) if pool is None else pool

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, _key(key), value)

    def __delitem__(self, key: Any) -> None:
        try:
            dict.__delitem__(self, _key(key))
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, _key(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self, _key(key), default)

    def pop(self, key: Any, *default: Any) -> Any:
        try:
            return dict.pop(self, _key(key))
        except KeyError:
            if default:
                return default[0]
            raise KeyError(key) from None

    def setdefault(self, key: Any, default: Any = None) -> Any:
        return dict.setdefault(self, _key(key), default)


def register_group(group: G) -> G:
    """Register ``group`` for :func:`set_limit` and :func:`reset` (usable as a decorator)."""
    _groups.append(group)
    return group


class Connections(PoolGroup):
    """Connection pools, one per connection."""

    def create(self, connection: Connection, limit: int | None) -> Resource:
        return connection.Pool(limit=limit)


class Producers(PoolGroup):
    """Producer pools, one per connection, on the pools of :data:`connections`."""

    def create(self, connection: Connection, limit: int | None) -> Resource:
        return ProducerPool(connections[connection], limit=limit)


connections = register_group(Connections(limit=use_global_limit))
producers = register_group(Producers(limit=use_global_limit))


def _all_pools() -> Iterator[Resource]:
    return chain.from_iterable(list(group.values()) for group in _groups)


def get_limit() -> int:
    """The limit of the pools of :data:`connections` and :data:`producers`."""
    return _limit[0]


def set_limit(limit: int | None, force: bool = False, reset_after: bool = False,
              ignore_errors: bool = False) -> int:
    """Change the global limit, and resize the pools that follow it.

    :param force: shrink pools even below the number of resources in use
        (those are collected); without it :exc:`RuntimeError` is raised and
        nothing changes.
    :param reset_after: :func:`reset` every pool afterwards.
    :param ignore_errors: shrink without collecting resources in use; they
        are closed when released while their pool is over its limit.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"set_limit() needs an int >= 0 (0 or None: no limit), not {limit!r}")
    limit = limit or 0
    if limit != (_limit[0] or 0):
        force = force or bool(disable_limit_protection)
        pools = [pool for group in _groups if group.limit is use_global_limit
                 for pool in list(group.values())]
        if limit and not (force or ignore_errors):
            for pool in pools:
                in_use = len(pool._dirty) + pool._pending
                if in_use > limit:
                    raise RuntimeError(
                        f"Cannot lower the pool limit to {limit}: {pool!r} has {in_use} "
                        f"resources in use. Release them first, or pass force=True")
        _limit[0] = limit
        for pool in pools:
            pool.resize(limit, force=force, ignore_errors=ignore_errors)
    if reset_after:
        reset()
    return limit


def reset(*args: Any, **kwargs: Any) -> None:
    """Collect every resource of every pool and forget the pools.

    The arguments are ignored (kombu uses this as an after-fork callback).
    """
    for pool in _all_pools():
        try:
            pool.force_close_all()
        except Exception:  # reset the other pools all the same
            logger.warning("Could not collect the resources of %r", pool, exc_info=True)
    for group in _groups:
        group.clear()

#: kombu 5.x's path of the Producer class.
Producer = _Producer
