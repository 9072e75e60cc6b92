"""Sentinel: a master, a replica and three sentinels; the master fails over."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Producer, Queue

pytestmark = pytest.mark.redis

MASTER = "kr-master"


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the servers are still settling
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def sentinels(redis_server: Any, tmp_path: Path) -> dict[str, Any]:
    import redis

    master = redis_server()
    replica = redis_server("--replicaof", "127.0.0.1", str(master.port))
    _wait(lambda: redis.Redis(port=replica.port).info("replication")["master_link_status"] == "up",
          10, "the replica to sync")
    ports = []
    for i in range(3):
        conf = tmp_path / f"sentinel{i}.conf"
        conf.write_text(f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 2\n"
                        f"sentinel down-after-milliseconds {MASTER} 1000\n"
                        f"sentinel failover-timeout {MASTER} 5000\n")
        ports.append(redis_server("--sentinel", config=str(conf)).port)
    _wait(lambda: all(redis.Redis(port=p).sentinel_masters().get(MASTER, {}).get("num-other-sentinels")
                      == 2 for p in ports), 20, "the sentinels to find each other")
    return {"master": master, "replica": replica, "sentinels": ports}


@pytest.mark.timeout(90)
def test_publish_and_consume_continue_after_failover(sentinels: dict[str, Any],
                                                      names: Any) -> None:
    import redis

    url = ";".join(f"sentinel://127.0.0.1:{p}" for p in sentinels["sentinels"])
    queue = Queue(names("q"))
    with Connection(url, transport_options={"master_name": MASTER}) as conn:
        producer = Producer(conn)
        publish = conn.ensure(producer, producer.publish, max_retries=20, interval_start=0.2,
                              interval_step=0.2, interval_max=1)
        publish("before", routing_key=queue.name, declare=[queue])
        # The message is on the master the sentinels named, nowhere else.
        master = redis.Redis(port=sentinels["master"].port)
        assert master.llen(queue.name) == 1
        assert redis.Redis(port=6379).llen(queue.name) == 0
        message = queue(conn.default_channel).get()
        assert message.payload == "before"
        assert master.hlen("unacked") == 1  # recorded on the master too
        message.ack()
        assert master.hlen("unacked") == 0

        sentinel = redis.Redis(port=sentinels["sentinels"][0])
        sentinel.execute_command("SENTINEL", "FAILOVER", MASTER)
        new_port = sentinels["replica"].port
        _wait(lambda: int(sentinel.sentinel_get_master_addr_by_name(MASTER)[1]) == new_port,
              30, "the failover")
        _wait(lambda: redis.Redis(port=new_port).info("replication")["role"] == "master",
              30, "the replica to be promoted")
        # Until the old master is demoted it still accepts writes, which the
        # resync then drops (Redis replication is asynchronous): wait for it.
        _wait(lambda: master.info("replication")["role"] == "slave", 30,
              "the old master to be demoted")

        publish("after", routing_key=queue.name, declare=[queue])
        assert redis.Redis(port=new_port).llen(queue.name) == 1  # on the new master
        get = conn.ensure(conn, lambda: queue(conn.default_channel).get(), max_retries=20,
                          interval_start=0.2, interval_step=0.2, interval_max=1)
        message = get()
        assert message is not None and message.payload == "after"
        message.ack()
    assert redis.Redis(port=new_port).llen(queue.name) == 0


@pytest.mark.timeout(90)
def test_a_blocked_consumer_rides_out_a_failover(sentinels: dict[str, Any], names: Any) -> None:
    """A consumer waiting in drain_events when the master fails over.

    It may see connection errors (recoverable: the same connection drains
    again, as Celery's consumer loop does), then consumes from the new
    master; the message it held unacknowledged is not lost.
    """
    import threading

    import redis
    from kombu import Consumer

    url = ";".join(f"sentinel://127.0.0.1:{p}" for p in sentinels["sentinels"])
    queue = Queue(names("q"))
    options = {"master_name": MASTER, "visibility_timeout": 2, "unacked_restore_interval": 0.2}
    with Connection(url, transport_options=options) as conn, \
            Connection(url, transport_options=options) as pub:
        producer = Producer(pub)
        publish = pub.ensure(producer, producer.publish, max_retries=40, interval_start=0.2,
                             interval_step=0.2, interval_max=1)
        publish("before", routing_key=queue.name, declare=[queue])
        got: list[str] = []
        errors: list[BaseException] = []
        held: list[Any] = []

        def on_message(body: Any, message: Any) -> None:
            got.append(body)
            if body == "before":
                held.append(message)  # unacknowledged across the failover
            else:
                message.ack()

        sentinel = redis.Redis(port=sentinels["sentinels"][0])
        new_port = sentinels["replica"].port
        master = redis.Redis(port=sentinels["master"].port)

        def fail_over() -> None:
            time.sleep(1)  # the consumer is blocked in drain_events by then
            sentinel.execute_command("SENTINEL", "FAILOVER", MASTER)
            _wait(lambda: master.info("replication")["role"] == "slave", 30,
                  "the old master to be demoted")
            publish("after", routing_key=queue.name)

        thread = threading.Thread(target=fail_over)
        with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=10):
            conn.drain_events(timeout=5)
            assert got == ["before"]
            thread.start()
            deadline = time.monotonic() + 60
            while "after" not in got:
                assert time.monotonic() < deadline, f"got {got}, errors {errors[-3:]}"
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
                except conn.connection_errors as exc:
                    errors.append(exc)
                    time.sleep(0.2)
            thread.join(30)
            assert not thread.is_alive()
            assert redis.Redis(port=new_port).info("replication")["role"] == "master"
            assert len(errors) < 20, errors
            # Acked on the new master, whose copy of the record came by replication.
            held[0].ack()
            end = time.monotonic() + 3
            while time.monotonic() < end:
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
                except conn.connection_errors as exc:
                    errors.append(exc)
            got_back = [b for b in got if b == "before"]
        assert got_back == ["before"], f"'before' delivered {len(got_back)} times"
    new_master = redis.Redis(port=new_port)
    assert new_master.hlen("unacked") == 0
    assert new_master.llen(queue.name) == 0
