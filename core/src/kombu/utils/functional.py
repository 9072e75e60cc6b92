"""Functional helpers: lazy values, caches, retries."""

from __future__ import annotations

import threading
from collections import OrderedDict, UserDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from functools import wraps
from itertools import count
from time import monotonic, sleep
from typing import (
    Any,
    TypeVar,
)

from kombu.utils.encoding import safe_repr

__all__ = (
    "ChannelPromise",
    "LRUCache",
    "accepts_argument",
    "dictfilter",
    "fxrange",
    "fxrangemax",
    "is_list",
    "lazy",
    "maybe_evaluate",
    "maybe_list",
    "memoize",
    "reprcall",
    "reprkwargs",
    "retry_over_time",
    "shufflecycle",
)

T = TypeVar("T")
KEYWORD_MARK = object()


class ChannelPromise:
    """Call ``contract()`` on first use and return that same value afterwards."""

    __value__: Any

    def __init__(self, contract: Callable[[], Any]) -> None:
        self.__contract__ = contract

    def __call__(self) -> Any:
        try:
            return self.__value__
        except AttributeError:
            value = self.__value__ = self.__contract__()
            return value

    def __repr__(self) -> str:
        try:
            return repr(self.__value__)
        except AttributeError:
            return f"<promise: 0x{id(self.__contract__):x}>"


class LRUCache(UserDict):
    """A thread-safe mapping that keeps at most ``limit`` keys.

    Reading or writing a key makes it the most recently used; inserting past
    the limit drops the least recently used key.  ``limit=None`` (or 0)
    means unbounded.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.mutex = threading.RLock()
        self.data: OrderedDict[Any, Any] = OrderedDict()

    def __getitem__(self, key: Any) -> Any:
        with self.mutex:
            value = self.data[key]
            self.data.move_to_end(key)
            return value

    def __setitem__(self, key: Any, value: Any) -> None:
        with self.mutex:
            data = self.data
            if key in data:
                data.move_to_end(key)
            elif self.limit and len(data) >= self.limit:
                data.popitem(last=False)
            data[key] = value

    def update(self, *args: Any, **kwargs: Any) -> None:
        with self.mutex:
            data, limit = self.data, self.limit
            data.update(*args, **kwargs)
            if limit:
                for _ in range(len(data) - limit):
                    data.popitem(last=False)

    def popitem(self, last: bool = True) -> tuple[Any, Any]:
        with self.mutex:
            return self.data.popitem(last)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self.data))

    def keys(self) -> list[Any]:  # type: ignore[override]
        with self.mutex:
            return list(self.data.keys())

    def values(self) -> list[Any]:  # type: ignore[override]
        with self.mutex:
            return list(self.data.values())

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        with self.mutex:
            return list(self.data.items())

    iterkeys = keys
    itervalues = values
    iteritems = items

    def incr(self, key: Any, delta: int = 1) -> int:
        """Add ``delta`` to the integer stored (as text, like memcached) at ``key``."""
        with self.mutex:
            newval = int(self.data.pop(key)) + delta
            self[key] = str(newval)
            return newval

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state.pop("mutex")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__ = state
        self.mutex = threading.RLock()


def memoize(
    maxsize: int | None = None,
    keyfun: Callable[[tuple[Any, ...], dict[str, Any]], Hashable] | None = None,
    Cache: type[LRUCache] = LRUCache,
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache a function's results by argument (at most ``maxsize`` of them).

    The wrapper has ``hits``, ``misses``, ``clear()`` and ``original_func``.
    """

    def _memoize(fun: Callable[..., T]) -> Callable[..., T]:
        cache = Cache(limit=maxsize)

        @wraps(fun)
        def _M(*args: Any, **kwargs: Any) -> T:
            if keyfun:
                key = keyfun(args, kwargs)
            else:
                key = args + (KEYWORD_MARK,) + tuple(sorted(kwargs.items()))
            try:
                value: T = cache[key]
            except KeyError:
                value = fun(*args, **kwargs)
                _M.misses += 1  # type: ignore[attr-defined]
                cache[key] = value
            else:
                _M.hits += 1  # type: ignore[attr-defined]
            return value

        def clear() -> None:
            """Empty the cache and reset the statistics."""
            cache.clear()
            _M.hits = _M.misses = 0  # type: ignore[attr-defined]

        _M.hits = _M.misses = 0  # type: ignore[attr-defined]
        _M.clear = clear  # type: ignore[attr-defined]
        _M.original_func = fun  # type: ignore[attr-defined]
        return _M

    return _memoize


class lazy:
    """A deferred call: ``fun(*args, **kwargs)`` is evaluated on every use.

    Calling the object, :func:`str`, :func:`repr` and comparisons evaluate it.
    """

    def __init__(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._fun = fun
        self._args = args
        self._kwargs = kwargs

    def __call__(self) -> Any:
        return self.evaluate()

    def evaluate(self) -> Any:
        return self._fun(*self._args, **self._kwargs)

    def __str__(self) -> str:
        return str(self())

    def __repr__(self) -> str:
        return repr(self())

    def __eq__(self, rhs: object) -> bool:
        return bool(self() == rhs)

    def __ne__(self, rhs: object) -> bool:
        return bool(self() != rhs)

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, Any]) -> lazy:
        memo[id(self)] = self
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self._fun,), {"_args": self._args, "_kwargs": self._kwargs})


def maybe_evaluate(value: Any) -> Any:
    """Evaluate ``value`` if it is a :class:`lazy`; return anything else unchanged."""
    if isinstance(value, lazy):
        return value.evaluate()
    return value


def is_list(obj: Any, scalars: tuple[type, ...] = (Mapping, str),
            iters: tuple[type, ...] = (Iterable,)) -> bool:
    """Return whether ``obj`` is iterable and not a mapping or a string."""
    return isinstance(obj, iters) and not isinstance(obj, scalars or ())


def maybe_list(obj: Any, scalars: tuple[type, ...] = (Mapping, str)) -> Any:
    """Wrap a scalar in a one-element list; return lists and ``None`` unchanged."""
    return obj if obj is None or is_list(obj, scalars) else [obj]


def dictfilter(d: Mapping[Any, Any] | None = None, **kw: Any) -> dict[Any, Any]:
    """Return the items of ``d`` (updated with ``kw``) whose value is not ``None``."""
    items = kw if d is None else (dict(d, **kw) if kw else d)
    return {k: v for k, v in items.items() if v is not None}


def shufflecycle(it: Iterable[T]) -> Iterator[T]:
    """Yield a random item of ``it`` forever (``it`` is copied, not shuffled)."""
    import random

    items = list(it)
    while True:
        random.shuffle(items)
        yield items[0]


def fxrange(
    start: float = 1.0, stop: float | None = None, step: float = 1.0, repeatlast: bool = False
) -> Iterator[float]:
    """Yield ``start``, ``start + step``, ... up to ``stop`` (inclusive; ``None``: forever).

    With ``repeatlast`` the last value is then repeated forever.
    """
    cur = start * 1.0
    while True:
        if not stop or cur <= stop:
            yield cur
            cur += step
        else:
            if not repeatlast:
                return
            yield cur - step


def fxrangemax(
    start: float = 1.0, stop: float | None = None, step: float = 1.0, max: float = 100.0
) -> Iterator[float]:
    """Like :func:`fxrange` (values capped at ``stop``), ending once the total passes ``max``."""
    sum_, cur = 0.0, start * 1.0
    while sum_ < max:
        yield cur
        cur = min(cur + step, stop) if stop else cur + step
        sum_ += cur


def _intervals(start: float, step: float, maximum: float) -> Iterator[float]:
    cur = float(start)
    while True:
        yield min(cur, maximum)
        cur += step


def _sleep(seconds: float, callback: Callable[[], Any] | None) -> None:
    """Sleep ``seconds``, calling ``callback`` about once a second."""
    end = monotonic() + seconds
    while True:
        remaining = end - monotonic()
        if remaining <= 0:
            return
        sleep(min(remaining, 1.0))
        if callback is not None and end - monotonic() > 0:
            callback()


def retry_over_time(
    fun: Callable[..., T],
    catch: type[BaseException] | tuple[type[BaseException], ...],
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    errback: Callable[[BaseException, Iterator[float], int], float | None] | None = None,
    max_retries: int | None = None,
    interval_start: float = 2,
    interval_step: float = 2,
    interval_max: float = 30,
    callback: Callable[[], Any] | None = None,
    timeout: float | None = None,
) -> T:
    """Call ``fun(*args, **kwargs)``, retrying while it raises one of ``catch``.

    :param max_retries: retries allowed after the first attempt: ``None``
        retries forever (still bounded by ``timeout``), ``0`` makes a single
        attempt.  When they are used up the last error is re-raised.
    :param interval_start: seconds to sleep before the first retry.
    :param interval_step: seconds added to the sleep after each retry.
    :param interval_max: the longest sleep.
    :param errback: called as ``errback(exc, intervals, retries)`` after each
        failure that will be retried, before sleeping, where ``intervals``
        is the iterator of planned sleeps and ``retries`` the number of
        retries so far (kombu's signature).  Its return value is the number
        of seconds to sleep; ``None`` means the next value of ``intervals``.
    :param callback: called before each sleep and about once a second while
        sleeping.
    :param timeout: overall deadline in seconds; when the next sleep would
        end past it, the last error is re-raised instead.

    Errors not in ``catch`` propagate at once.

    Differences from kombu 5.x, which this fixes: the deadline is checked
    before sleeping instead of after, so the call never outlives ``timeout``
    by a sleep; ``timeout=0`` is a deadline, not "no deadline"; sleeps stop
    growing at ``interval_max`` (kombu's reach ``interval_max +
    interval_start``); an errback that returns ``None`` no longer breaks
    the loop.
    """
    args = () if args is None else args
    kwargs = {} if kwargs is None else kwargs
    intervals = _intervals(interval_start, interval_step, interval_max)
    deadline = None if timeout is None else monotonic() + timeout
    for retries in count():
        try:
            return fun(*args, **kwargs)
        except catch as exc:
            if max_retries is not None and retries >= max_retries:
                raise
            if deadline is not None and monotonic() >= deadline:
                raise
            if callback is not None:
                callback()
            tts = errback(exc, intervals, retries) if errback is not None else None
            tts = next(intervals) if tts is None else float(tts)
            if deadline is not None and monotonic() + tts > deadline:
                raise
            _sleep(tts, callback)
    raise AssertionError("unreachable")  # pragma: no cover


def reprkwargs(kwargs: Mapping[str, Any], sep: str = ", ", fmt: str = "{0}={1}") -> str:
    """Render ``kwargs`` as ``key=repr(value)`` pairs."""
    return sep.join(fmt.format(k, safe_repr(v)) for k, v in kwargs.items())


def reprcall(name: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
             sep: str = ", ") -> str:
    """Render a call, e.g. ``reprcall('f', (1,), {'x': 2}) == 'f(1, x=2)'``."""
    kwargs = kwargs or {}
    return "{}({}{}{})".format(
        name,
        sep.join(map(safe_repr, args or ())),
        sep if args and kwargs else "",
        reprkwargs(kwargs, sep),
    )


def accepts_argument(func: Callable[..., Any], argument_name: str) -> bool:
    """Return whether ``func`` takes an argument named ``argument_name``."""
    import inspect

    spec = inspect.getfullargspec(func)
    return argument_name in spec.args or argument_name in spec.kwonlyargs


# kombu < 3.0 names.
promise = lazy
maybe_promise = maybe_evaluate
