"""The former name of :mod:`kombu.transport.transport_registry`, kept importable."""

from __future__ import annotations

from kombu.transport.transport_registry import (
    ENTRY_POINT_GROUP,
    ENV_BLOCKED,
    ENV_DISABLE_AUTOLOAD,
    KOMBU5_ONLY,
    SHIPPED,
    Registration,
    Target,
    TransportConflictWarning,
    TransportRegistry,
    registry,
)
from kombu.utils.entrypoints import entry_points

__all__ = ("ENTRY_POINT_GROUP", "ENV_BLOCKED", "ENV_DISABLE_AUTOLOAD", "KOMBU5_ONLY", "SHIPPED",
           "Registration", "Target", "TransportConflictWarning", "TransportRegistry",
           "entry_points", "registry")
