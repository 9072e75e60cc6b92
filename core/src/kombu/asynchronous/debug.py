"""Readable descriptions of a hub's descriptors and events, for logs and debugging."""

from __future__ import annotations

from typing import Any

from kombu.utils.eventio import ERR, READ, WRITE
from kombu.utils.functional import reprcall

__all__ = ("callback_for", "repr_active", "repr_events", "repr_flag", "repr_readers", "repr_writers")


def repr_flag(flag: int) -> str:
    """``R``, ``W`` and ``!`` (error) for the bits set in ``flag``."""
    return ("R" if flag & READ else "") + ("W" if flag & WRITE else "") + ("!" if flag & ERR else "")


def _rcb(obj: Any) -> str:
    """Describe a hub callback entry: ``(callback, args)``, a callable, a string or ``None``."""
    if obj is None:
        return "<missing>"
    if isinstance(obj, str):
        return obj
    if isinstance(obj, tuple):
        cb, args = obj
        return reprcall(_name(cb), args=args)
    return _name(obj)


def _name(obj: Any) -> str:
    return str(getattr(obj, "__name__", None) or repr(obj))


def repr_readers(h: Any) -> list[str]:
    """One ``(fd)callback->R!`` string per reader of hub ``h``."""
    return [f"({fd}){_rcb(cb)}->{repr_flag(READ | ERR)}" for fd, cb in h.readers.items()]


def repr_writers(h: Any) -> list[str]:
    """One ``(fd)callback->W`` string per writer of hub ``h``."""
    return [f"({fd}){_rcb(cb)}->{repr_flag(WRITE)}" for fd, cb in h.writers.items()]


def repr_active(h: Any) -> str:
    """The readers and writers of hub ``h``, comma separated."""
    return ", ".join(repr_readers(h) + repr_writers(h))


def repr_events(h: Any, events: Any) -> str:
    """Describe ``[(fd, flags)]`` as returned by a poller: the callback each event goes to."""
    return ", ".join(
        f"{_rcb(callback_for(h, fd, fl, '(GONE)'))}({fd})->{repr_flag(fl)}" for fd, fl in events
    )


def callback_for(h: Any, fd: int, flag: int, *default: Any) -> Any:
    """The hub entry that an event ``flag`` on ``fd`` goes to; ``default`` (or KeyError) if none."""
    try:
        if flag & READ:
            return h.readers[fd]
        if flag & WRITE:
            if fd in h.consolidate:
                return h.consolidate_callback
            return h.writers[fd]
    except KeyError:
        if default:
            return default[0]
        raise
    return None
