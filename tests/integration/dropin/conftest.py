"""Fixtures of the kombu 5.x drop-in tests: each transport on its real broker.

Redis tests use database 6 (and 7 for a second, unrelated connection);
queue names are unique per test and deleted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import unique_name

REDIS_URL = "redis://127.0.0.1:6379/6"
REDIS_URL_OTHER = "redis://127.0.0.1:6379/7"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"

#: (test id, URL, broker marker)
CASES = [
    ("memory", "memory://", None),
    ("redis", REDIS_URL, "redis"),
    ("pyamqp", AMQP_URL, "rabbitmq"),
]


def _params() -> list[object]:
    return [pytest.param(url, id=id_, marks=[getattr(pytest.mark, broker)] if broker else [])
            for id_, url, broker in CASES]


@pytest.fixture(params=_params())
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each transport's URL in turn (memory, Redis DB 6, RabbitMQ)."""
    url: str = request.param
    return url


@pytest.fixture
def qname() -> Iterator[str]:
    """A fresh queue name for this test."""
    yield unique_name("dropin")
