"""Hashing helpers and a dict keyed by entity equality."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

__all__ = ("EqualityDict", "HashedSeq", "eqhash")


class HashedSeq(list):
    """A list that computes its hash once (a cache key for argument tuples)."""

    __slots__ = ("hashvalue",)

    def __init__(self, *seq: Hashable) -> None:
        super().__init__(seq)
        self.hashvalue = hash(seq)

    def __hash__(self) -> int:  # type: ignore[override]
        return self.hashvalue


def eqhash(o: Any) -> int:
    """Return ``o.__eqhash__()`` if ``o`` defines it, else ``hash(o)``.

    Entities (exchanges, queues) define ``__eqhash__`` so that two equal but
    distinct instances map to the same key.
    """
    method = getattr(o, "__eqhash__", None)
    if method is not None:
        return method()  # type: ignore[no-any-return]
    return hash(o)


class EqualityDict(dict):
    """A dict whose keys are stored as :func:`eqhash` of the given key.

    Unlike kombu's, a missing key raises :exc:`KeyError` (kombu raises
    :exc:`AttributeError` unless a subclass defines ``__missing__``), and
    ``in``, :meth:`get` and :meth:`pop` look keys up the same way as ``[]``.
    Iteration yields the stored hashes, as kombu's does.
    """

    def __getitem__(self, key: Any) -> Any:
        h = eqhash(key)
        if not dict.__contains__(self, h):
            missing = getattr(self, "__missing__", None)
            if missing is None:
                raise KeyError(key)
            return missing(key)
        return dict.__getitem__(self, h)

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, eqhash(key), value)

    def __delitem__(self, key: Any) -> None:
        try:
            dict.__delitem__(self, eqhash(key))
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, eqhash(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self, eqhash(key), default)

    def pop(self, key: Any, *default: Any) -> Any:
        try:
            return dict.pop(self, eqhash(key))
        except KeyError:
            if default:
                return default[0]
            raise KeyError(key) from None

    def setdefault(self, key: Any, default: Any = None) -> Any:
        return dict.setdefault(self, eqhash(key), default)
