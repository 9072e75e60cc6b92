"""Every transport of the workspace runs kombu's conformance suite.

``transport_url`` is parametrized over the transports in
tests/helpers/transports.py, so this module runs the public suite
(:mod:`kombu.testing.transport_suite`) exactly as a third-party transport
would, overriding ``transport_capabilities`` where a transport differs.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers.transports import capabilities_for
from kombu.testing.transport_suite import *  # noqa: F403
from kombu.testing.transport_suite import DEFAULT_CAPABILITIES


@pytest.fixture
def transport_capabilities(transport_url: str) -> dict[str, Any]:
    return {**DEFAULT_CAPABILITIES, **capabilities_for(transport_url)}
