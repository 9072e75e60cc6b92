"""Environment detection, fork hooks and file-descriptor helpers."""

from __future__ import annotations

import numbers
import os
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from functools import wraps
from io import UnsupportedOperation
from itertools import count
from typing import Any, TypeVar
from weakref import WeakValueDictionary

__all__ = (
    "FILENO_ERRORS",
    "coro",
    "detect_environment",
    "entrypoints",
    "fileno",
    "iter_entry_points",
    "maybe_fileno",
    "nested",
    "register_after_fork",
)

T = TypeVar("T")

#: Errors raised by ``fileno()`` of objects that have no file descriptor.
FILENO_ERRORS = (AttributeError, ValueError, UnsupportedOperation)

_environment: str | None = None


def coro(gen: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Generator[Any, Any, Any]]:
    """Decorate a generator function so that its generators start primed.

    The returned function advances the new generator to its first ``yield``,
    so values can be ``send()``-ed to it at once.
    """

    @wraps(gen)
    def wind_up(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        it = gen(*args, **kwargs)
        next(it)
        return it

    return wind_up


def _detect_environment() -> str:
    if "eventlet" in sys.modules:
        try:
            import socket

            from eventlet.patcher import is_monkey_patched  # type: ignore[import-not-found,unused-ignore]

            if is_monkey_patched(socket):
                return "eventlet"
        except ImportError:
            pass
    if "gevent" in sys.modules:
        try:
            import socket

            from gevent import socket as gsocket  # type: ignore[import-untyped,import-not-found,unused-ignore]

            if socket.socket is gsocket.socket:
                return "gevent"
        except ImportError:
            pass
    return "default"


def detect_environment() -> str:
    """Return ``'eventlet'`` or ``'gevent'`` if the socket module is patched,
    else ``'default'`` (computed once)."""
    global _environment
    if _environment is None:
        _environment = _detect_environment()
    return _environment


def iter_entry_points(group: str) -> Any:
    """Return the entry points of ``group`` (not loaded).

    :mod:`importlib.metadata` is imported only when this is called.
    """
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points
    else:  # pragma: no cover - exercised on Python 3.9 only
        from importlib_metadata import entry_points
    return entry_points(group=group)


def entrypoints(namespace: str) -> Iterator[tuple[Any, Any]]:
    """Yield ``(entry_point, loaded_object)`` for the entry points of ``namespace``."""
    return ((ep, ep.load()) for ep in iter_entry_points(namespace))


def fileno(f: Any) -> int:
    """Return the file descriptor of ``f`` (an int is returned as is)."""
    if isinstance(f, numbers.Integral):
        return int(f)
    return f.fileno()  # type: ignore[no-any-return]


def maybe_fileno(f: Any) -> int | None:
    """Return the file descriptor of ``f``, or ``None`` if it has none."""
    try:
        return fileno(f)
    except FILENO_ERRORS:
        return None


@contextmanager
def nested(*managers: Any) -> Iterator[list[Any]]:
    """Enter every context manager in order; exit them in reverse.

    Yields the list of values their ``__enter__`` returned.
    """
    with ExitStack() as stack:
        yield [stack.enter_context(manager) for manager in managers]


_after_fork_registry: WeakValueDictionary[tuple[int, int, Callable[[Any], Any]], Any] = (
    WeakValueDictionary()
)
_after_fork_counter = count()
_after_fork_lock = threading.Lock()
_after_fork_installed = False


def _run_after_forkers() -> None:
    from kombu.log import get_logger

    for (_, _, func), obj in sorted(_after_fork_registry.items(), key=lambda item: item[0][0]):
        try:
            func(obj)
        except Exception:  # noqa: BLE001  (one callback must not stop the others)
            get_logger(__name__).exception("after-fork callback %r raised", func)


def register_after_fork(obj: T, func: Callable[[T], Any]) -> None:
    """Call ``func(obj)`` in the child process after every :func:`os.fork`.

    ``obj`` is held weakly: the callback goes away with it.  Callbacks run
    in registration order; one that raises is logged and the others still
    run.  (kombu uses :mod:`multiprocessing`'s hook, which runs only for
    processes started by :mod:`multiprocessing`; this runs for every fork.)
    """
    global _after_fork_installed
    with _after_fork_lock:
        if not _after_fork_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_run_after_forkers)
            _after_fork_installed = True
        _after_fork_registry[(next(_after_fork_counter), id(obj), func)] = obj


def get_gevent_concurrent_error() -> type[BaseException] | None:
    """gevent's ``ConcurrentObjectUseError`` when gevent is loaded, else None.

    Looked up on each call, so that gevent imported (and monkey-patched)
    after kombu is still seen; gevent is never imported here.
    """
    if "gevent" not in sys.modules:
        return None
    try:
        from gevent.exceptions import ConcurrentObjectUseError  # type: ignore[import-untyped]
    except ImportError:
        return None
    return ConcurrentObjectUseError  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    if name == "reraise":  # kombu 5.x imports it here too
        from kombu.exceptions import reraise

        return reraise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
