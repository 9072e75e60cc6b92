"""Tools for testing transports: the conformance suite.

Every transport, ours and third parties', runs the same behavioural suite.
In the transport's own tests::

    # tests/test_conformance.py
    import pytest
    from kombu.testing.transport_suite import *  # noqa: F401,F403

    @pytest.fixture
    def transport_url():
        return "mytransport://localhost/"

Optionally override ``transport_capabilities`` to switch off what the
transport does not do (see :data:`~kombu.testing.transport_suite.DEFAULT_CAPABILITIES`);
exchange types are taken from the transport's ``implements``.
"""
