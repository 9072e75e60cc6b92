"""Fixtures of the real-Celery tests: a RabbitMQ virtual host of their own and
the output of the Celery processes when a test fails (``helpers.celerycluster``
makes the clusters)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import require
from helpers.celerycluster import Cluster, rabbitmqctl

pytest.importorskip("celery", reason="the Celery tests need celery (./dev setup installs it)")


@pytest.fixture(scope="session")
def celery_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host for the session's Celery tests, deleted afterwards."""
    require("rabbitmq")
    name = f"celery-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"celery_report_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _print_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test fails, print the output of its clusters' processes."""
    yield
    report = getattr(request.node, "celery_report_call", None)
    if report is None or not report.failed:
        return
    for value in getattr(request.node, "funcargs", {}).values():
        if isinstance(value, Cluster):
            print(f"===== {value.broker}/{value.pool}: output of its processes (last 20000 "
                  "characters each)")
            print(value.logs())
