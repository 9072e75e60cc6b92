"""Transports: name resolution and the in-process registry.

``TRANSPORT_ALIASES`` maps names to ``'module:Class'`` paths, as in kombu
5.x; third-party code that adds to it on import (kombu-pgmq does) keeps
working.  Transports this project ships come from plugins instead: see
:mod:`kombu.transport.transport_registry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

from kombu.transport.transport_registry import Registration, TransportRegistry, registry
from kombu.utils.imports import symbol_by_name

__all__ = (
    "TRANSPORT_ALIASES",
    "Registration",
    "TransportRegistry",
    "get_transport_cls",
    "register",
    "register_transport",
    "registry",
    "resolve_transport",
    "supports_librabbitmq",
    "symbol_by_name",
    "transport_names",
    "unregister",
)

#: Extra names: ``name -> 'module:Class'`` (or a class, or a factory).
TRANSPORT_ALIASES: dict[str, str | type | Callable[[], Any]] = {}


def supports_librabbitmq() -> bool:
    """kombu-core never selects librabbitmq on its own."""
    return False


def get_transport_cls(transport: Any = None) -> type:
    """The transport class for a name, ``'module:Class'`` path or class
    (``None``: ``'amqp'``); resolved once, then cached."""
    return registry.resolve("amqp" if transport is None else transport)


#: kombu 5.x's other name of :func:`get_transport_cls`.
resolve_transport = get_transport_cls


def register(name: str, target: Any, aliases: Iterable[str] = (),
             api: Iterable[int] | None = None, *, replace: bool = False) -> Registration:
    """Register a transport in this process, without packaging it.

    ``target`` is a ``'module:Class'`` string (imported on first use) or
    the class.  In-process registrations take precedence over plugins.
    """
    return registry.register(name, target, aliases, api, replace=replace)


register_transport = register


def unregister(name: str) -> None:
    """Remove a transport registered with :func:`register`."""
    registry.unregister(name)


def transport_names() -> list[str]:
    """Every transport name that resolves, plugins included."""
    return registry.names()
