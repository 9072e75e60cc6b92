"""Import objects by their dotted names."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ("instantiate", "qualname", "symbol_by_name")


def symbol_by_name(
    name: Any,
    aliases: Mapping[str, str] | None = None,
    imp: Callable[..., Any] | None = None,
    package: str | None = None,
    sep: str = ".",
    default: Any = None,
    **kwargs: Any,
) -> Any:
    """Import and return the object named by ``name``.

    ``name`` is ``'package.module:attr'`` or ``'package.module.attr'``
    (``sep`` splits the last part when there is no colon); a name with no
    separator imports the module itself, relative to ``package`` when given.
    ``aliases`` maps short names to full ones.  Objects that are not strings
    are returned unchanged, so a class may be passed where a name is expected.

    When the import or the attribute lookup fails, ``default`` is returned if
    it is not ``None``; otherwise the :exc:`ImportError` or
    :exc:`AttributeError` propagates.
    """
    if not isinstance(name, str):
        return name
    if aliases:
        name = aliases.get(name) or name
    if imp is None:
        imp = importlib.import_module
    sep = ":" if ":" in name else sep
    module_name, _, attr = name.rpartition(sep)
    if not module_name:
        attr, module_name = "", package or attr
    try:
        try:
            module = imp(module_name, package=package, **kwargs)
        except ValueError as exc:
            raise ValueError(f"Couldn't import {name!r}: {exc}") from exc
        return getattr(module, attr) if attr else module
    except (ImportError, AttributeError):
        if default is None:
            raise
    return default


def instantiate(name: Any, *args: Any, **kwargs: Any) -> Any:
    """Import the class (or callable) named by ``name`` and call it."""
    return symbol_by_name(name)(*args, **kwargs)


def qualname(obj: Any) -> str:
    """Return ``'module.QualifiedName'`` of ``obj``, or of its class for instances."""
    if not hasattr(obj, "__qualname__"):
        obj = type(obj)
    name: str = obj.__qualname__
    module = getattr(obj, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else name


def __getattr__(name: str) -> Any:
    if name == "reraise":  # kombu 5.x imports it here too
        from kombu.exceptions import reraise

        return reraise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
