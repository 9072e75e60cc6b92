"""Every transport of the workspace runs kombu's conformance kit.

``transport_url`` is parametrized over the transports in
tests/helpers/transports.py, so this module runs the public kit
(:mod:`kombu.testing.suite`, loaded as a plugin by tests/conftest.py)
exactly as a third-party transport would, with each transport's declared
:class:`~kombu.testing.Requirements`.
"""

from __future__ import annotations

import pytest
from helpers.transports import requirements_for
from kombu.testing import Requirements
from kombu.testing.suite import *  # noqa: F403


@pytest.fixture
def transport_requirements(transport_url: str) -> Requirements:
    return requirements_for(transport_url)
