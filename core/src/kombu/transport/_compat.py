"""kombu 5.x's module paths of the transports that are plugins here.

``kombu.transport.redis`` (and ``memory``, ``pyamqp``) re-export the plugin's
transport module, so ``from kombu.transport.redis import Transport`` and
``transport='kombu.transport.redis:Transport'`` keep working when the
plugin is installed, and say what to install when it is not.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["reexport"]


def reexport(name: str, module: str, distribution: str) -> dict[str, Any]:
    """The public names of ``module``, for ``kombu.transport.<name>``'s globals."""
    try:
        source = importlib.import_module(module)
    except ImportError as exc:
        package = module.partition(".")[0]
        if exc.name is None or exc.name.partition(".")[0] != package:
            raise  # the plugin is there but cannot import (say, its client library)
        raise ImportError(
            f"kombu.transport.{name} is provided by the {distribution} distribution, "
            f"which is not installed: pip install {distribution}", name=exc.name) from exc
    names = getattr(source, "__all__", [n for n in vars(source) if not n.startswith("_")])
    exported = {n: getattr(source, n) for n in names}
    exported["__all__"] = list(names)
    return exported
