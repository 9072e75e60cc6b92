"""Entry points of installed distributions, read without importlib.metadata.

:func:`entry_points` returns the entry points of one group.  Plain
``*.dist-info`` and ``*.egg-info`` directories on :data:`sys.path` are read
directly (:func:`scan_entry_points`), which is several times faster than
importing :mod:`importlib.metadata`; anything else on the path (a zip file,
a finder that provides distributions) makes it fall back to
importlib.metadata.  Either way each entry point has ``name``, ``value``,
``load()`` and ``dist`` (with ``name`` and ``version``).
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from typing import Any

__all__ = ("ENV_DISABLE_AUTOLOAD", "Distribution", "EntryPoint", "autoload_disabled",
           "dist_name", "dist_version", "entry_points", "env_flag", "normalize_name",
           "parse_entry_points", "scan_entry_points")

#: Set (to anything but ``0``/``false``/``no``): no plugin is loaded from entry
#: points, neither transports nor observers; register them explicitly.
ENV_DISABLE_AUTOLOAD = "KOMBU_DISABLE_PLUGIN_AUTOLOAD"


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def autoload_disabled() -> bool:
    """Whether :data:`ENV_DISABLE_AUTOLOAD` turns entry-point loading off."""
    return env_flag(ENV_DISABLE_AUTOLOAD)


class Distribution:
    """The name (normalized) and version of an installed distribution."""

    __slots__ = ("name", "version")

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version

    def __repr__(self) -> str:
        return f"<Distribution {self.name} {self.version}>"


class EntryPoint:
    """An entry point read from ``entry_points.txt``: the part of
    :class:`importlib.metadata.EntryPoint` the transport registry uses."""

    __slots__ = ("name", "value", "dist")

    def __init__(self, name: str, value: str, dist: Distribution) -> None:
        self.name = name
        self.value = value
        self.dist = dist

    def __repr__(self) -> str:
        return f"<EntryPoint {self.name} = {self.value} ({self.dist.name})>"

    def load(self) -> Any:
        """Import the module the value names and return the object it names."""
        module_name, _, attr = self.value.partition(":")
        obj: Any = import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def dist_name(ep: Any) -> str | None:
    """The distribution name of an entry point, ``None`` if it has none."""
    dist = getattr(ep, "dist", None)
    return None if dist is None else dist.name


def dist_version(ep: Any) -> str | None:
    """The distribution version of an entry point, ``None`` if it has none."""
    dist = getattr(ep, "dist", None)
    return None if dist is None else dist.version


def entry_points(group: str) -> list[Any]:
    """The entry points of ``group`` from every installed distribution."""
    found = scan_entry_points(group)
    if found is not None:
        return found
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points as _entry_points
    else:  # pragma: no cover
        from importlib_metadata import entry_points as _entry_points
    return list(_entry_points(group=group))


#: Modules whose meta-path finders find only what the directory scan finds.
_STDLIB_FINDERS = ("importlib", "_frozen_importlib_external")


def scan_entry_points(group: str, path: list[str] | None = None) -> list[EntryPoint] | None:
    """The entry points of ``group`` read from the metadata directories on
    ``path`` (default :data:`sys.path`), or ``None`` when something there
    (a zip file, a non-standard finder on :data:`sys.meta_path`) needs
    importlib.metadata.  A distribution found twice counts once, the first
    on the path winning, as importlib.metadata does."""
    if any(getattr(finder, "find_distributions", None) is not None
           and getattr(finder, "__module__", "").split(".")[0] not in _STDLIB_FINDERS
           for finder in sys.meta_path):
        return None
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path if path is None else path:
        directory = entry or "."
        try:
            names = os.listdir(directory)
        except NotADirectoryError:
            return None
        except OSError:
            continue
        for filename in names:
            stem, dot, suffix = filename.rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info"):
                continue
            name, _, version = stem.partition("-")
            key = normalize_name(name)
            if key in seen:
                continue
            seen.add(key)
            eps_file = os.path.join(directory, filename, "entry_points.txt")
            try:
                with open(eps_file, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            found.extend(parse_entry_points(text, group,
                                            Distribution(key, version.split("-")[0])))
    return found


def normalize_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return name.strip().lower().replace("_", "-").replace(".", "-")


def parse_entry_points(text: str, group: str, dist: Distribution) -> list[EntryPoint]:
    """The entry points of ``group`` in ``text``, an ``entry_points.txt`` (INI) file."""
    eps: list[EntryPoint] = []
    in_group = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            in_group = line[1:-1].strip() == group
        elif in_group and "=" in line:
            name, _, value = line.partition("=")
            eps.append(EntryPoint(name.strip(), value.strip(), dist))
    return eps
