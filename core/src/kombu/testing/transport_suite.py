"""The conformance kit under its first name (kept for existing test modules).

``from kombu.testing.transport_suite import *`` imports the whole kit, as
:mod:`kombu.testing.suite` does, plus the older ``transport_capabilities``
dict fixture, which is turned into :class:`~kombu.testing.Requirements`.
New code uses :mod:`kombu.testing.suite` and overrides
``transport_requirements`` instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from kombu.testing.requirements import Requirements
from kombu.testing.suite import *  # noqa: F403
from kombu.testing.suite import __all__ as _suite_all

__all__ = (*_suite_all, "DEFAULT_CAPABILITIES", "transport_capabilities")

#: The older capability switches and their defaults.
DEFAULT_CAPABILITIES: dict[str, Any] = {
    "priority_order": "desc",      # "desc", "asc" or None (no ordering by priority)
    "restore_on_close": True,
    "queue_size": True,
    "redelivered_flag": True,
}


@pytest.fixture
def transport_capabilities() -> dict[str, Any]:
    """What the transport supports, as the older dict (override to switch things off)."""
    return dict(DEFAULT_CAPABILITIES)


@pytest.fixture  # type: ignore[no-redef]
def transport_requirements(transport_capabilities: dict[str, Any]) -> Requirements:
    """:class:`Requirements` built from ``transport_capabilities``."""
    caps = {**DEFAULT_CAPABILITIES, **transport_capabilities}
    off = {key: "switched off in transport_capabilities"
           for key in ("restore_on_close", "queue_size", "redelivered_flag") if not caps[key]}
    if caps["priority_order"] is None:
        off["priorities"] = "transport_capabilities['priority_order'] is None"
        return Requirements().without(**off)
    return Requirements(priority_order=caps["priority_order"]).without(**off)
