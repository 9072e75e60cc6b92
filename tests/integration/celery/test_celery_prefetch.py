"""Celery's ``worker_disable_prefetch`` with a real prefork worker (``-c 2``).

Celery 5.7 applies the setting on Redis only: it replaces ``can_consume`` on
the task channel's QoS instance with one that says no while the worker holds
as many tasks as it has processes.  With six ``acks_late`` tasks, four queued
before the worker starts and two sent while it runs two, Celery 5.7 on kombu
5.7 holds exactly the two that run: no reserved task, two unacked records,
the rest left in the queue (without the setting it holds all six: four
reserved).  The Redis test runs tasks that wait for a gate file the test
opens, so what the worker holds does not change while the test looks.  On
RabbitMQ Celery ignores the setting and says so in the worker's log.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until
from helpers.celerycluster import REDIS_DB_URL, Cluster, make_cluster
from helpers.celeryproc import CeleryProcess

pytestmark = pytest.mark.slow

TASKS = 6
#: Seconds each task sleeps on RabbitMQ.
SECONDS = 1.5
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


def worker_node(worker: CeleryProcess) -> str:
    """The node name ``worker`` was started with (``-n``), ``%h`` expanded."""
    pattern = str(worker.argv[worker.argv.index("-n") + 1])
    return pattern.replace("%h", socket.gethostname())


def send_slow(cluster: Cluster, count: int, seconds: float) -> dict[str, str]:
    """Send ``count`` slow tasks; token -> task id."""
    slow = cluster.task("slow")
    tokens = [f"p{i}-{uuid.uuid4().hex}" for i in range(count)]
    return {tok: slow.apply_async((tok, seconds), ignore_result=True).id for tok in tokens}


def progress(cluster: Cluster, tokens: dict[str, str]) -> tuple[set[str], set[str]]:
    """Ids of the tasks that started, and of those that are done."""
    started: set[str] = set()
    done: set[str] = set()
    for event in cluster.events():
        if event["token"] in tokens:
            (started if event["event"] == "start" else done).add(event["id"])
    return started, done


def started_at_least(cluster: Cluster, tokens: dict[str, str], count: int) -> bool:
    return len(progress(cluster, tokens)[0]) >= count


def all_done(cluster: Cluster, tokens: dict[str, str], ids: frozenset[str]) -> bool:
    return progress(cluster, tokens)[1] >= ids


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


def send_gated(cluster: Cluster, count: int) -> dict[str, str]:
    """Send ``count`` tasks that each run until the test opens their gate; token -> id."""
    gated = cluster.task("gated")
    tokens = [f"g{i}-{uuid.uuid4().hex}" for i in range(count)]
    return {tok: gated.apply_async((tok, str(cluster.directory / f"gate-{tok}"), RUN_TIMEOUT / 2),
                                   ignore_result=True).id for tok in tokens}


@pytest.mark.redis
def test_redis_worker_holds_only_the_tasks_it_runs(redis_cluster: Cluster) -> None:
    import redis

    cluster = redis_cluster
    unacked_key = json.loads(cluster.env["CT_TRANSPORT"])["unacked_key"]
    client = redis.Redis.from_url(REDIS_DB_URL, socket_timeout=5)
    try:
        # Four wait before the worker starts (its first fetch finds them all);
        # two more arrive while two run (they wake the worker up).
        tokens = send_gated(cluster, TASKS - 2)
        assert client.llen(cluster.queue) == TASKS - 2
        worker = cluster.start_worker()
        name = worker_node(worker)
        inspect = cluster.app.control.inspect(timeout=5, destination=[name])
        by_id = {task_id: tok for tok, task_id in tokens.items()}
        finished: set[str] = set()
        for round_ in range(TASKS // 2):
            # Two tasks run and wait for their gates: nothing changes until the
            # test opens them, so the worker must hold these two and nothing
            # else (a third would be reserved, a third unacked record and one
            # message less in the queue).
            wait_until(partial(started_at_least, cluster, tokens, len(finished) + 2),
                       timeout=RUN_TIMEOUT / 2, interval=0.05,
                       message=f"two tasks started in round {round_ + 1}")
            if round_ == 0:
                late = send_gated(cluster, 2)
                tokens.update(late)
                by_id.update({task_id: tok for tok, task_id in late.items()})
            for _ in range(3):
                started, done = progress(cluster, tokens)
                running = started - done
                assert len(running) == 2 and done == finished, (round_, started, done)
                assert task_ids(inspect.active(), name) == sorted(running), round_
                reserved = task_ids(inspect.reserved(), name)
                assert reserved == [], f"round {round_ + 1}: the worker reserved {reserved}"
                unacked = client.hlen(unacked_key)
                assert unacked == 2, f"round {round_ + 1}: {unacked} unacked records"
                assert client.llen(cluster.queue) == TASKS - len(started), round_
                time.sleep(0.2)
            for task_id in running:
                (cluster.directory / f"gate-{by_id[task_id]}").touch()
            finished |= running
            wait_until(partial(all_done, cluster, tokens, frozenset(finished)),
                       timeout=RUN_TIMEOUT / 2, interval=0.05,
                       message=f"the tasks of round {round_ + 1} done")
        wait_all_once(cluster, tokens)
        wait_until(lambda: client.hlen(unacked_key) == 0, timeout=10,
                   message="every record acked")
    finally:
        client.close()


@pytest.mark.rabbitmq
def test_amqp_worker_ignores_the_setting_as_celery_says(amqp_cluster: Cluster) -> None:
    cluster = amqp_cluster
    worker = cluster.start_worker()
    worker.wait_for("worker_disable_prefetch is only supported for Redis brokers", timeout=10)
    assert "Current broker transport: amqp" in worker.log(), worker.log()
    name = worker_node(worker)
    inspect = cluster.app.control.inspect(timeout=5, destination=[name])
    tokens = send_slow(cluster, TASKS, SECONDS)
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
