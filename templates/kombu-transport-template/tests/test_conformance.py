"""kombu-core's conformance kit against mytransport://."""

import pytest
from kombu.testing import Requirements
from kombu.testing.suite import *  # noqa: F403


@pytest.fixture
def transport_url() -> str:
    return "mytransport://"


@pytest.fixture
def transport_requirements() -> Requirements:
    # Declare what the transport cannot do; each is skipped with this reason.
    return Requirements.lacking(
        multiprocess="the store lives in this process",
        priorities="one FIFO per queue",
        ttl="message expiration is not implemented",
        headers_exchange="kombu's virtual layer has no headers exchange by default",
    )
