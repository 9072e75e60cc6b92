"""``acks_late`` tasks survive a worker that dies, and a warm shutdown finishes
them; a worker reconnects after its AMQP connection is cut.

Each test starts and restarts its own workers; Redis runs with a 5 s
visibility timeout, so a message held by a dead worker is redelivered to
the next one within seconds.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.celerycluster import Cluster, broker_params, make_cluster
from helpers.faultproxy import FaultProxy

pytestmark = pytest.mark.slow

RESULT_TIMEOUT = 30.0


@pytest.fixture(params=broker_params())
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    broker, pool = request.param
    vhost = request.getfixturevalue("celery_vhost") if broker == "amqp" else None
    made = make_cluster(broker, pool, tmp_path, vhost=vhost)
    try:
        yield made
    finally:
        made.close()


def test_acks_late_task_survives_kill_and_warm_shutdown_finishes(cluster: Cluster) -> None:
    slow = cluster.task("slow")

    # Warm shutdown (SIGTERM): the running task finishes, then the worker exits.
    worker = cluster.start_worker()
    warm = uuid.uuid4().hex
    slow.delay(warm, 2)
    cluster.wait_runs(warm, event="start")
    worker.send(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()
    assert len(cluster.runs(warm, "done")) == 1, worker.log()
    assert len(cluster.runs(warm, "start")) == 1

    # SIGKILL while the task runs: the next worker runs it again.
    worker = cluster.start_worker()
    killed = uuid.uuid4().hex
    result = slow.delay(killed, 1.5)
    cluster.wait_runs(killed, event="start")
    worker.kill()
    assert cluster.runs(killed, "done") == []
    cluster.start_worker()
    assert result.get(timeout=RESULT_TIMEOUT) == killed
    starts = cluster.runs(killed, "start")
    assert len(starts) == 2 and len(cluster.runs(killed, "done")) == 1, starts
    assert starts[1]["redelivered"] or cluster.broker == "redis", starts


@pytest.mark.parametrize("cluster", [p for p in broker_params() if "prefork" in p.id],
                         indirect=True)
def test_acks_late_task_survives_cold_shutdown(cluster: Cluster) -> None:
    slow = cluster.task("slow")
    worker = cluster.start_worker()
    cold = uuid.uuid4().hex
    result = slow.delay(cold, 3)
    cluster.wait_runs(cold, event="start")
    worker.send(signal.SIGQUIT)
    worker.wait()
    assert cluster.runs(cold, "done") == [], worker.log()
    cluster.start_worker()
    assert result.get(timeout=RESULT_TIMEOUT) == cold
    assert len(cluster.runs(cold, "start")) == 2
    assert len(cluster.runs(cold, "done")) == 1


@pytest.mark.rabbitmq
@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_amqp_worker_reconnects_after_its_connection_is_cut(
        pool: str, tmp_path: Path, celery_vhost: str) -> None:
    with FaultProxy(("127.0.0.1", 5672)) as proxy:
        worker_side = make_cluster("amqp", pool, tmp_path, vhost=celery_vhost,
                                   CT_HEARTBEAT="2")
        worker_side.env["CT_BROKER"] = proxy.url("amqp", f"/{celery_vhost}").replace(
            "amqp://", "amqp://guest:guest@")
        # The client talks to the broker directly, with the worker's names.
        client = Cluster("amqp", pool, {**worker_side.env,
                                        "CT_BROKER": f"amqp://guest:guest@127.0.0.1:5672/"
                                                     f"{celery_vhost}"}, tmp_path)
        try:
            worker = worker_side.start_worker()
            add = client.task("add")
            assert add.delay(1, 2).get(timeout=RESULT_TIMEOUT) == 3
            mark = worker.log_size()
            proxy.cut_all()
            worker.wait_for("Connection", timeout=30, since=mark)
            # Sent while the worker may still be reconnecting: it must run it.
            assert add.delay(2, 3).get(timeout=60) == 5
            assert add.delay(3, 4).get(timeout=RESULT_TIMEOUT) == 7
            assert worker.alive()
        finally:
            worker_side.close(delete_queues=False)
            client.close()
