"""Fixtures and markers shared by every test directory.

Broker-backed tests ask for ``redis_url`` / ``amqp_url`` or carry the
``redis`` / ``rabbitmq`` marker.  The broker is probed once per session;
when it is absent the test is skipped with a message saying how to start
it, or failed when ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable

import pytest

# The conformance kit ships in the kombu package as a pytest plugin, which
# registers assertion rewriting for it (failures show the values compared).
pytest_plugins = ["kombu.testing.pytest_plugin"]
pytest.register_assert_rewrite("kombu.testing")

from helpers import require, transport_params, unique_name  # noqa: E402
from helpers.redis_cluster import LocalCluster  # noqa: E402
from helpers.transports import CLUSTER_PLACEHOLDER  # noqa: E402

#: Redis database of the tests that use ``redis_url``.
REDIS_TEST_DB = 12
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_TEST_DB}"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"

_MARKER_BROKERS = ("redis", "rabbitmq")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for name in _MARKER_BROKERS:
        if item.get_closest_marker(name) is not None:
            require(name)


@pytest.fixture
def redis_url() -> str:
    """URL of the local Redis (database 12); skips or fails if it is absent."""
    require("redis")
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    """URL of the local RabbitMQ as guest; skips or fails if it is absent."""
    require("rabbitmq")
    return AMQP_URL


@pytest.fixture(params=transport_params())
def transport_url(request: pytest.FixtureRequest) -> str:
    """Each transport of ``helpers.transports.TRANSPORTS`` in turn (the Redis
    Cluster case starts the session's cluster and gives its URL)."""
    url: str = request.param
    if url == CLUSTER_PLACEHOLDER:
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url()
    return url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A Redis Cluster on loopback (three masters, three replicas), started
    once per test run; skipped (failed under CI) without redis-server/redis-cli."""
    cluster = LocalCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def unique() -> Callable[..., str]:
    """``unique(kind='q')``: a fresh queue/exchange name for this test."""
    return unique_name
