"""Utilities shared by kombu and by transports.

Prefer importing from the submodules (:mod:`kombu.utils.objects`, ...);
the names below are re-exported for kombu compatibility and are imported
on first access, so ``import kombu.utils`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# ``uuid`` is also the name of a submodule: import the function eagerly so the
# package attribute is the function, as in kombu, whatever is imported first.
from kombu.utils.uuid import uuid

__all__ = (
    "EqualityDict",
    "cached_property",
    "emergency_dump_state",
    "fileno",
    "fxrange",
    "fxrangemax",
    "maybe_fileno",
    "maybe_list",
    "nested",
    "register_after_fork",
    "reprcall",
    "reprkwargs",
    "retry_over_time",
    "symbol_by_name",
    "uuid",
)

_EXPORTS = {
    "EqualityDict": "kombu.utils.collections",
    "fileno": "kombu.utils.compat",
    "maybe_fileno": "kombu.utils.compat",
    "nested": "kombu.utils.compat",
    "register_after_fork": "kombu.utils.compat",
    "emergency_dump_state": "kombu.utils.div",
    "fxrange": "kombu.utils.functional",
    "fxrangemax": "kombu.utils.functional",
    "maybe_list": "kombu.utils.functional",
    "reprcall": "kombu.utils.functional",
    "reprkwargs": "kombu.utils.functional",
    "retry_over_time": "kombu.utils.functional",
    "symbol_by_name": "kombu.utils.imports",
    "cached_property": "kombu.utils.objects",
}

if TYPE_CHECKING:  # pragma: no cover
    from kombu.utils.collections import EqualityDict
    from kombu.utils.compat import fileno, maybe_fileno, nested, register_after_fork
    from kombu.utils.div import emergency_dump_state
    from kombu.utils.functional import (
        fxrange,
        fxrangemax,
        maybe_list,
        reprcall,
        reprkwargs,
        retry_over_time,
    )
    from kombu.utils.imports import symbol_by_name
    from kombu.utils.objects import cached_property


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kombu.utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
