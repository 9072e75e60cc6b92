"""The transport conformance kit: one behavioural suite for every transport.

In the root ``conftest.py`` of the transport's tests::

    pytest_plugins = ["kombu.testing.pytest_plugin"]

and in a test module::

    import pytest
    from kombu.testing import Requirements
    from kombu.testing.suite import *  # noqa: F401,F403

    @pytest.fixture
    def transport_url():
        return "mytransport://localhost/"

    @pytest.fixture
    def transport_requirements():
        return Requirements.lacking(multiprocess="the store lives in one process")

Each capability the transport does not declare skips its tests, and the
skip names the capability and the reason (see :data:`CAPABILITIES`).
Install with ``pip install "kombu-core[testing]"``.
"""

from kombu.testing.requirements import CAPABILITIES, Requirements

__all__ = ("CAPABILITIES", "Requirements")
