"""A real Celery 5.7 worker on this project's transports, for Redis and RabbitMQ,
with the solo pool and with prefork ``-c 2``: tasks, canvas, remote control,
events, beat and the command line.

One worker per (broker, pool) serves every test of this module; each test
uses its own task tokens, so the tests share the worker without sharing
state.  RabbitMQ runs with the ``rpc://`` result backend for solo and Redis
for prefork; Redis always uses the Redis backend (database 8).
"""

from __future__ import annotations

import datetime
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until
from helpers.celerycluster import Cluster, broker_params, delete_queue, make_cluster

pytestmark = pytest.mark.slow

RESULT_TIMEOUT = 30.0


@pytest.fixture(scope="module", params=broker_params())
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Cluster]:
    broker, pool = request.param
    vhost = request.getfixturevalue("celery_vhost") if broker == "amqp" else None
    backend = "rpc://" if (broker, pool) == ("amqp", "solo") else None
    made = make_cluster(broker, pool, tmp_path_factory.mktemp(f"celery-{broker}-{pool}"),
                        backend=backend, vhost=vhost)
    try:
        made.worker = made.start_worker()
        yield made
    finally:
        made.close()


def token() -> str:
    return uuid.uuid4().hex


def worker_name(cluster: Cluster) -> str:
    """The node name of the cluster's worker, as ``ping`` reports it."""
    replies = cluster.app.control.ping(timeout=3)
    names = [name for reply in replies for name in reply if name.startswith("w")]
    assert names, f"no worker answered ping: {replies}"
    return str(names[0])


# -- tasks and canvas -------------------------------------------------------


def test_delay_get(cluster: Cluster) -> None:
    assert cluster.task("add").delay(2, 3).get(timeout=RESULT_TIMEOUT) == 5


def test_countdown_runs_no_earlier_than_asked(cluster: Cluster) -> None:
    tok = token()
    sent = time.time()
    result = cluster.task("record").apply_async((tok,), countdown=2)
    assert result.get(timeout=RESULT_TIMEOUT) == tok
    (run,) = cluster.runs(tok)
    assert run["t"] >= sent + 2 - 0.02, f"ran {run['t'] - sent:.3f}s after sending"


def test_eta_runs_no_earlier_than_asked(cluster: Cluster) -> None:
    tok = token()
    eta = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    result = cluster.task("record").apply_async((tok,), eta=eta)
    assert result.get(timeout=RESULT_TIMEOUT) == tok
    (run,) = cluster.runs(tok)
    assert run["t"] >= eta.timestamp() - 0.02


def test_task_retries_twice_then_succeeds(cluster: Cluster) -> None:
    tok = token()
    assert cluster.task("flaky").delay(tok, 2).get(timeout=RESULT_TIMEOUT) == 2
    attempts = cluster.runs(tok, "attempt")
    assert [a["retries"] for a in attempts] == [0, 1, 2]
    assert len({a["id"] for a in attempts}) == 1


def test_group_of_twenty(cluster: Cluster) -> None:
    from celery import group

    add = cluster.task("add")
    result = group(add.s(i, i) for i in range(20)).apply_async()
    assert result.get(timeout=RESULT_TIMEOUT) == [2 * i for i in range(20)]


def test_chord(cluster: Cluster) -> None:
    from celery import chord

    add, tsum = cluster.task("add"), cluster.task("tsum")
    if cluster.env["CT_BACKEND"].startswith("rpc"):
        # Celery's rpc:// backend has no chord support and says so.
        with pytest.raises(NotImplementedError, match="does not support chords"):
            chord(add.s(i, i) for i in range(10))(tsum.s())
        return
    result = chord(add.s(i, i) for i in range(10))(tsum.s())
    assert result.get(timeout=RESULT_TIMEOUT) == sum(2 * i for i in range(10))


def test_thousand_tasks_all_complete_none_twice_unless_redelivered(cluster: Cluster) -> None:
    record = cluster.task("record")
    tokens = [f"k{i}-{token()}" for i in range(1000)]
    for tok in tokens:
        record.apply_async((tok,), ignore_result=True)
    wanted = set(tokens)

    def done() -> bool:
        return wanted <= {e["token"] for e in cluster.events()}

    wait_until(done, timeout=120, interval=0.25, message="1000 tasks recorded")
    runs: dict[str, list[dict[str, Any]]] = {}
    for event in cluster.events():
        if event["token"] in wanted:
            runs.setdefault(event["token"], []).append(event)
    twice = {tok: r for tok, r in runs.items() if len(r) > 1}
    unflagged = {tok: r for tok, r in twice.items() if not all(e["redelivered"] for e in r[1:])}
    assert not unflagged, f"tasks ran twice without being flagged redelivered: {unflagged}"


# -- revoke and remote control ---------------------------------------------


def test_revoked_countdown_task_never_runs(cluster: Cluster) -> None:
    revoked, later = token(), token()
    record = cluster.task("record")
    result = record.apply_async((revoked,), countdown=2)
    result.revoke()
    # Due after the revoked one: once it ran, the revoked one was due too.
    assert record.apply_async((later,), countdown=3).get(timeout=RESULT_TIMEOUT) == later
    time.sleep(0.5)
    assert cluster.runs(revoked) == []


def test_inspect_ping_active_stats_registered(cluster: Cluster) -> None:
    name = worker_name(cluster)
    inspect = cluster.app.control.inspect(timeout=3, destination=[name])
    assert inspect.ping() == {name: {"ok": "pong"}}

    tok = token()
    slow = cluster.task("slow").delay(tok, 2)
    cluster.wait_runs(tok, event="start")
    active = inspect.active()
    assert active is not None and name in active, active
    if cluster.pool == "prefork":
        assert slow.id in [task["id"] for task in active[name]], active
    else:  # the solo pool runs the task in the main process: it answers once it is done
        assert active[name] == [], active
    assert slow.get(timeout=RESULT_TIMEOUT) == tok

    stats = inspect.stats()
    assert stats is not None
    assert stats[name]["total"].get("celeryapp.slow", 0) >= 1, stats[name]["total"]
    assert "pool" in stats[name] and "broker" in stats[name]
    registered = inspect.registered()
    assert registered is not None
    assert {"celeryapp.add", "celeryapp.record", "celeryapp.slow"} <= set(registered[name])


def test_control_rate_limit(cluster: Cluster) -> None:
    name = worker_name(cluster)
    control = cluster.app.control
    replies = control.rate_limit("celeryapp.tsum", "100/m", reply=True, destination=[name],
                                 timeout=3)
    assert replies and "ok" in replies[0][name], replies
    registered = control.inspect(timeout=3, destination=[name]).registered("rate_limit")
    assert registered is not None
    assert "celeryapp.tsum [rate_limit=100/m]" in registered[name], registered
    assert cluster.task("tsum").delay([1, 2]).get(timeout=RESULT_TIMEOUT) == 3
    control.rate_limit("celeryapp.tsum", None, reply=True, destination=[name], timeout=3)


def test_control_add_consumer(cluster: Cluster) -> None:
    name = worker_name(cluster)
    control = cluster.app.control
    extra = f"{cluster.queue}-extra"
    try:
        replies = control.add_consumer(extra, reply=True, destination=[name], timeout=3)
        assert replies and "ok" in replies[0][name], replies
        inspect = control.inspect(timeout=3, destination=[name])

        def consuming() -> bool:
            queues = inspect.active_queues() or {}
            return extra in [q["name"] for q in queues.get(name, [])]

        wait_until(consuming, timeout=15, interval=0.2, message=f"the worker consuming {extra}")
        result = cluster.task("add").apply_async((20, 22), queue=extra)
        assert result.get(timeout=RESULT_TIMEOUT) == 42
    finally:
        control.cancel_consumer(extra, reply=True, destination=[name], timeout=3)
        delete_queue(cluster, extra)


# -- events ------------------------------------------------------------------


def test_events_receiver_counts_task_succeeded(cluster: Cluster) -> None:
    app = cluster.app
    succeeded: list[str] = []
    with app.connection_for_read() as conn:
        receiver = app.events.Receiver(
            conn, handlers={"task-succeeded": lambda event: succeeded.append(event["uuid"]),
                            "*": lambda event: None})
        thread = threading.Thread(target=receiver.capture,
                                  kwargs={"limit": None, "timeout": None, "wakeup": True},
                                  daemon=True)
        thread.start()
        try:
            # The receiver's queue is bound once a task's event reaches it.
            add = cluster.task("add")
            deadline = time.monotonic() + 20
            warm = add.delay(0, 0)
            while warm.id not in succeeded:
                assert time.monotonic() < deadline, "the receiver got no task-succeeded event"
                warm.get(timeout=RESULT_TIMEOUT)
                if warm.id not in succeeded:
                    time.sleep(0.2)
                    if warm.id not in succeeded:
                        warm = add.delay(0, 0)
            ids = [add.delay(i, 1).id for i in range(5)]
            wait_until(lambda: set(ids) <= set(succeeded), timeout=20,
                       message="5 task-succeeded events")
            assert sorted(i for i in succeeded if i in ids) == sorted(ids)
        finally:
            receiver.should_stop = True
            thread.join(10)
        assert not thread.is_alive(), "the events receiver did not stop"


def test_celery_events_dump(cluster: Cluster) -> None:
    dump = cluster.spawn("events", "--dump")

    def succeeded_line(task_id: str) -> str | None:
        return next((line for line in dump.log().splitlines()
                     if task_id in line and "succeeded" in line), None)

    try:
        dump.wait_for("starting capture", timeout=30)
        add = cluster.task("add")
        # Events published before the dumper's queue is bound are lost: send
        # until one shows up, then one more that must.
        deadline = time.monotonic() + 30
        while True:
            first = add.delay(1, 1)
            assert first.get(timeout=RESULT_TIMEOUT) == 2
            try:
                wait_until(lambda f=first.id: succeeded_line(f), timeout=2)
                break
            except AssertionError:
                assert time.monotonic() < deadline, dump.log()
        second = add.delay(2, 2)
        assert second.get(timeout=RESULT_TIMEOUT) == 4
        wait_until(lambda: succeeded_line(second.id), timeout=15,
                   message="celery events --dump printing the task-succeeded event")
        assert "celeryapp.add" in str(succeeded_line(second.id)), dump.log()
    finally:
        dump.stop(signal.SIGTERM, timeout=10)


# -- beat --------------------------------------------------------------------


def test_beat_sends_a_periodic_task_and_answers_ping(cluster: Cluster, tmp_path: Path) -> None:
    beat = cluster.spawn("beat", "-l", "info", "-s", str(tmp_path / "schedule"),
                         env={"CT_BEAT": "1"})
    try:
        wait_until(lambda: len(cluster.runs("beat")) >= 2, timeout=30,
                   message="two runs of the periodic task")
        def beat_pong() -> bool:
            replies = cluster.app.control.ping(timeout=2)
            return any(name.startswith("celerybeat@") and reply == {"ok": "pong"}
                       for r in replies for name, reply in r.items())
        wait_until(beat_pong, timeout=30, interval=0.5, message="beat answering ping")
    finally:
        beat.stop(signal.SIGTERM, timeout=10)


# -- command line ------------------------------------------------------------


def test_cli_status_inspect_ping_purge(cluster: Cluster) -> None:
    name = worker_name(cluster)
    status = cluster.run_cli("status", "--timeout", "3")
    assert status.returncode == 0, status.stderr
    assert name in status.stdout and "online" in status.stdout, status.stdout

    ping = cluster.run_cli("inspect", "ping", "--timeout", "3", "-d", name)
    assert ping.returncode == 0, ping.stderr
    assert "pong" in ping.stdout, ping.stdout

    parked = f"{cluster.queue}-parked"
    try:
        record = cluster.task("record")
        with cluster.app.connection_for_write() as conn:
            from kombu import Queue
            Queue(parked, routing_key=parked).bind(conn.default_channel).declare()
        for _ in range(5):
            record.apply_async((token(),), queue=parked, routing_key=parked)
        purge = cluster.run_cli("purge", "-f", "-Q", parked)
        assert purge.returncode == 0, purge.stderr
        assert "Purged 5 messages" in purge.stdout, purge.stdout
        again = cluster.run_cli("purge", "-f", "-Q", parked)
        assert "No messages purged" in again.stdout, again.stdout
    finally:
        delete_queue(cluster, parked)
