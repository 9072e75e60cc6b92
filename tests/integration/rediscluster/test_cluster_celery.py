"""A real Celery 5.7 worker on ``rediscluster://`` (the session's Redis Cluster),
unmodified, under its event loop (the cluster transport is evented): tasks,
results, remote control over the cluster (pidbox fanout), events, and a
worker SIGKILLed with an ``acks_late`` task whose message comes back.

Results go to Redis database 8 on the shared server (Celery's Redis result
backend, not this project's code); the broker is the cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import wait_until
from helpers.redis_cluster import LocalCluster

pytest.importorskip("celery", reason="the Celery tests need celery (./dev setup installs it)")

from helpers.celerycluster import REDIS_DB_URL, Cluster, make_cluster

pytestmark = [pytest.mark.rediscluster, pytest.mark.slow, pytest.mark.timeout(240)]

RESULT_TIMEOUT = 30.0


@pytest.fixture(scope="module", params=["solo", "prefork"])
def celery_on_cluster(request: pytest.FixtureRequest, redis_cluster: LocalCluster,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis_cluster.wait_ok()
    made = make_cluster("redis", request.param,
                        tmp_path_factory.mktemp(f"celery-cluster-{request.param}"),
                        backend=REDIS_DB_URL, broker_url=redis_cluster.url())
    try:
        made.worker = made.start_worker()
        yield made
    finally:
        made.close()


def test_the_cluster_connection_is_evented(celery_on_cluster: Cluster) -> None:
    with celery_on_cluster.app.connection_for_read() as conn:
        conn.connect()
        assert type(conn.transport).__name__ == "ClusterTransport"
        assert conn.is_evented  # so the worker runs its Hub loop, as on one Redis


def test_tasks_and_results(celery_on_cluster: Cluster) -> None:
    add = celery_on_cluster.task("add")
    results = [add.delay(i, i) for i in range(200)]
    assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [2 * i for i in range(200)]


def test_five_hundred_tasks_each_run_once_unless_redelivered(celery_on_cluster: Cluster) -> None:
    record = celery_on_cluster.task("record")
    tokens = [f"c{i}-{uuid.uuid4().hex}" for i in range(500)]
    for tok in tokens:
        record.apply_async((tok,), ignore_result=True)
    wanted = set(tokens)
    wait_until(lambda: wanted <= {e["token"] for e in celery_on_cluster.events()},
               timeout=120, interval=0.25, message="500 tasks recorded")
    runs: dict[str, list[dict[str, Any]]] = {}
    for event in celery_on_cluster.events():
        if event["token"] in wanted:
            runs.setdefault(event["token"], []).append(event)
    unflagged = {t: r for t, r in runs.items()
                 if len(r) > 1 and not all(e["redelivered"] for e in r[1:])}
    assert not unflagged, f"tasks ran twice without being flagged redelivered: {unflagged}"


def test_remote_control_over_the_cluster(celery_on_cluster: Cluster) -> None:
    control = celery_on_cluster.app.control
    replies = control.ping(timeout=5)
    assert replies and all(list(r.values())[0] == {"ok": "pong"} for r in replies), replies
    active = control.inspect(timeout=5).active_queues() or {}
    names = {q["name"] for queues in active.values() for q in queues}
    assert celery_on_cluster.queue in names


def test_killed_worker_s_acks_late_task_comes_back(celery_on_cluster: Cluster) -> None:
    """SIGKILL while an acks_late task runs: a new worker runs it again once the
    visibility timeout (5 s here) has passed."""
    slow = celery_on_cluster.task("slow")
    tok = uuid.uuid4().hex
    result = slow.delay(tok, 1.0)
    celery_on_cluster.wait_runs(tok, event="start")
    celery_on_cluster.worker.kill()
    assert celery_on_cluster.runs(tok, "done") == []
    celery_on_cluster.worker = celery_on_cluster.start_worker()
    assert result.get(timeout=RESULT_TIMEOUT) == tok
    assert len(celery_on_cluster.runs(tok, "start")) == 2
    assert len(celery_on_cluster.runs(tok, "done")) == 1
