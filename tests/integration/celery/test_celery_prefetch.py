"""Celery's ``worker_disable_prefetch`` with a real prefork worker (``-c 2``).

Celery 5.7 applies the setting on Redis only: it replaces ``can_consume`` on
the task channel's QoS instance with one that says no while the worker holds
as many tasks as it has processes.  With six ``acks_late`` tasks of a few
seconds each, Celery 5.7 on kombu 5.7 holds exactly the two that run: no
reserved task, two unacked records, four messages left in the queue (and
without the setting it holds all six: four reserved).  On RabbitMQ Celery
ignores the setting and says so in the worker's log.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until
from helpers.celerycluster import REDIS_DB_URL, Cluster, make_cluster

pytestmark = pytest.mark.slow

TASKS = 6
#: Seconds each task sleeps: long enough to look at the worker while two run.
SECONDS = 3.0
RUN_TIMEOUT = 60.0


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = make_cluster("redis", "prefork", tmp_path, CT_DISABLE_PREFETCH="1")
    tag = made.env["CT_CONTROL"].rsplit("-", 1)[-1]
    # Unacked records of this cluster only (the database is shared); the keys
    # carry the tag, so close() deletes them.
    transport = json.loads(made.env["CT_TRANSPORT"])
    transport.update(unacked_key=f"ct-unacked-{tag}", unacked_index_key=f"ct-unacked-index-{tag}",
                     unacked_mutex_key=f"ct-unacked-mutex-{tag}")
    made.env["CT_TRANSPORT"] = json.dumps(transport)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def amqp_cluster(tmp_path: Path, celery_vhost: str) -> Iterator[Cluster]:
    made = make_cluster("amqp", "prefork", tmp_path, vhost=celery_vhost, CT_DISABLE_PREFETCH="1")
    try:
        yield made
    finally:
        made.close()


def node_name(cluster: Cluster) -> str:
    """The node name of the cluster's only worker."""
    replies = cluster.app.control.ping(timeout=3)
    names = [name for reply in replies for name in reply if name.startswith("w")]
    assert len(names) == 1, f"expected one worker to answer ping: {replies}"
    return str(names[0])


def send_six(cluster: Cluster, seconds: float) -> dict[str, str]:
    """Send the six slow tasks; token -> task id."""
    slow = cluster.task("slow")
    tokens = [f"p{i}-{uuid.uuid4().hex}" for i in range(TASKS)]
    return {tok: slow.apply_async((tok, seconds), ignore_result=True).id for tok in tokens}


def progress(cluster: Cluster, tokens: dict[str, str]) -> tuple[set[str], set[str]]:
    """Ids of the tasks that started, and of those that are done."""
    started, done = set(), set()
    for event in cluster.events():
        if event["token"] in tokens:
            (started if event["event"] == "start" else done).add(event["id"])
    return started, done


def wait_all_once(cluster: Cluster, tokens: dict[str, str]) -> None:
    """All tasks complete, and none started or finished twice."""
    wait_until(lambda: len(progress(cluster, tokens)[1]) == len(tokens), timeout=RUN_TIMEOUT,
               interval=0.2, message=f"{len(tokens)} tasks done")
    for tok, task_id in tokens.items():
        runs = cluster.runs(tok)
        assert sorted(e["event"] for e in runs) == ["done", "start"], runs
        assert {e["id"] for e in runs} == {task_id}


def task_ids(reply: dict[str, Any] | None, name: str) -> list[str]:
    assert reply is not None and name in reply, f"{name} did not answer: {reply}"
    return sorted(str(task["id"]) for task in reply[name])


@pytest.mark.redis
def test_redis_worker_holds_only_the_tasks_it_runs(redis_cluster: Cluster) -> None:
    import redis

    cluster = redis_cluster
    transport = json.loads(cluster.env["CT_TRANSPORT"])
    cluster.start_worker()
    name = node_name(cluster)
    inspect = cluster.app.control.inspect(timeout=3, destination=[name])
    client = redis.Redis.from_url(REDIS_DB_URL, socket_timeout=5)
    try:
        tokens = send_six(cluster, SECONDS)
        wait_until(lambda: len(progress(cluster, tokens)[0]) >= 2, timeout=RUN_TIMEOUT,
                   interval=0.05, message="two tasks started")
        # Look at the worker while two run and more wait in the queue.  A look
        # counts when nothing started or finished during it: then the worker
        # holds the two running tasks and nothing else (a third would show as
        # reserved, as a third unacked record and as one message less queued).
        looks = 0
        deadline = time.monotonic() + RUN_TIMEOUT
        while looks < 5:
            started, done = progress(cluster, tokens)
            if len(started) >= TASKS:
                break
            assert time.monotonic() < deadline, f"the tasks did not all start: {started}"
            active = task_ids(inspect.active(), name)
            reserved = task_ids(inspect.reserved(), name)
            unacked = int(client.hlen(transport["unacked_key"]))
            queued = int(client.llen(cluster.queue))
            if progress(cluster, tokens) != (started, done) or len(started - done) != 2:
                continue  # a task started or finished meanwhile: look again
            looks += 1
            assert active == sorted(started - done), (active, started, done)
            assert reserved == [], f"the worker reserved {reserved} while two tasks ran"
            assert unacked == 2, f"{unacked} unacked records while two tasks ran"
            assert queued == TASKS - len(started), (queued, len(started))
        assert looks >= 2, f"{looks} look(s) at the worker while two tasks ran, wanted 2"
        wait_all_once(cluster, tokens)
        wait_until(lambda: client.hlen(transport["unacked_key"]) == 0, timeout=10,
                   message="every record acked")
    finally:
        client.close()


@pytest.mark.rabbitmq
def test_amqp_worker_ignores_the_setting_as_celery_says(amqp_cluster: Cluster) -> None:
    cluster = amqp_cluster
    worker = cluster.start_worker()
    worker.wait_for("worker_disable_prefetch is only supported for Redis brokers", timeout=10)
    assert "Current broker transport: amqp" in worker.log(), worker.log()
    name = node_name(cluster)
    inspect = cluster.app.control.inspect(timeout=3, destination=[name])
    tokens = send_six(cluster, SECONDS / 2)
    # The prefetch window (4 x 2 processes) holds every task: two run, four wait.
    seen: list[tuple[list[str], list[str]]] = []

    def prefetched() -> bool:
        done = progress(cluster, tokens)[1]
        seen.append((task_ids(inspect.active(), name), task_ids(inspect.reserved(), name)))
        return not done and [len(ids) for ids in seen[-1]] == [2, TASKS - 2]

    try:
        wait_until(prefetched, timeout=RUN_TIMEOUT / 4, interval=0.1,
                   message="two tasks active and four reserved")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; (active, reserved) seen last: {seen[-3:]}") from None
    wait_all_once(cluster, tokens)
