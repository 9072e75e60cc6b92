"""Named pattern matchers (``glob``, ``pcre``) used to pick pidbox destinations."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from fnmatch import fnmatch
from typing import Any

from .utils.compat import entrypoints  # noqa: F401  (kombu 5.x exposes it here)
from .utils.encoding import bytes_to_str

__all__ = ("MatcherNotInstalled", "MatcherRegistry", "match", "register", "registry",
           "unregister")

#: ``matcher(first, second, **kwargs) -> bool``.
MatcherFunction = Callable[..., Any]

#: Entry-point group of third-party matchers (loaded on the first unknown name).
ENTRY_POINT_GROUP = "kombu.matchers"


class MatcherNotInstalled(Exception):
    """No matcher is registered under the requested name."""


def _pcre(pattern: str, data: str, **kwargs: Any) -> bool:
    return re.match(pattern, data, **kwargs) is not None


class MatcherRegistry:
    """Matchers by name; :meth:`match` applies one to ``(data, pattern)``."""

    MatcherNotInstalled = MatcherNotInstalled

    #: Matchers called as ``matcher(pattern, data)`` instead of ``(data, pattern)``.
    matcher_pattern_first = ["pcre"]

    def __init__(self) -> None:
        self._matchers: dict[str, MatcherFunction] = {}
        self._default_name = "glob"
        self._entry_points_loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, matcher: MatcherFunction) -> None:
        """Register ``matcher`` under ``name`` (replacing any matcher of that name)."""
        if not callable(matcher):
            raise TypeError(f"matcher {name!r} must be callable, got {matcher!r}")
        self._matchers[name] = matcher

    def unregister(self, name: str) -> None:
        """Remove the matcher ``name``; :exc:`MatcherNotInstalled` if there is none."""
        try:
            del self._matchers[name]
        except KeyError:
            raise self._not_installed(name) from None

    def _set_default_matcher(self, name: str) -> None:
        """Use the matcher ``name`` when :meth:`match` is given none."""
        self._lookup(name)
        self._default_name = name

    def _not_installed(self, name: str) -> Exception:
        installed = ", ".join(sorted(self._matchers)) or "none"
        return self.MatcherNotInstalled(
            f"No matcher installed for {name} (installed: {installed}); register one "
            f"with kombu.matcher.register(name, function) or the {ENTRY_POINT_GROUP!r} "
            f"entry-point group")

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
            from .utils.compat import iter_entry_points

            for ep in iter_entry_points(ENTRY_POINT_GROUP):
                loaded = ep.load()
                # kombu's form is a tuple of register() arguments; a bare
                # callable is accepted too.
                if callable(loaded):
                    self.register(ep.name, loaded)
                else:
                    self.register(ep.name, *loaded)

    def _lookup(self, name: str) -> MatcherFunction:
        matcher = self._matchers.get(name)
        if matcher is None and not self._entry_points_loaded:
            self._load_entry_points()
            matcher = self._matchers.get(name)
        if matcher is None:
            raise self._not_installed(name)
        return matcher

    def match(self, data: str | bytes, pattern: str | bytes, matcher: str | None = None,
              matcher_kwargs: dict[str, Any] | None = None) -> bool:
        """Whether ``data`` matches ``pattern`` with the matcher named ``matcher``.

        ``matcher`` defaults to ``'glob'`` (:func:`fnmatch.fnmatch`); ``'pcre'``
        is :func:`re.match` (anchored at the start).  ``matcher_kwargs`` are
        passed to the matcher.  Raises :exc:`MatcherNotInstalled` for an
        unknown name.
        """
        name = matcher or self._default_name
        function = self._lookup(name)
        data_s, pattern_s = bytes_to_str(data), bytes_to_str(pattern)
        if name in self.matcher_pattern_first:
            first, second = pattern_s, data_s
        else:
            first, second = data_s, pattern_s
        return bool(function(first, second, **(matcher_kwargs or {})))


#: The process-wide registry.
registry = MatcherRegistry()

#: ``match(data, pattern, matcher=None, matcher_kwargs=None)`` on :data:`registry`.
match = registry.match
#: ``register(name, matcher)`` on :data:`registry`.
register = registry.register
#: ``unregister(name)`` on :data:`registry`.
unregister = registry.unregister


def register_glob() -> None:
    """Register ``glob`` (:func:`fnmatch.fnmatch`) in :data:`registry`."""
    registry.register("glob", fnmatch)


def register_pcre() -> None:
    """Register ``pcre`` (:func:`re.match`, pattern first) in :data:`registry`."""
    registry.register("pcre", _pcre)


register_glob()
register_pcre()
