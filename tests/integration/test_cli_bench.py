"""``kombu bench``: a full publish/consume run on every transport, then the queue is gone."""

from __future__ import annotations

import json
from typing import Callable

import pytest
from helpers.cli import kombu
from kombu import Connection

REDIS = "redis://127.0.0.1:6379/14"
AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def _check_summary(stdout: str, n: int) -> dict:
    summary = json.loads(stdout)
    assert summary["messages"] == n and summary["size"] == 64
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "max"}
    lat = summary["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    for key in ("publish_rate", "consume_rate", "total_rate"):
        assert summary[key] > 0, key
    return summary


@pytest.mark.parametrize("url", ["memory://", "dictq://"])
def test_in_process(url: str) -> None:
    proc = kombu("bench", url, "-n", "500", "--size", "64", "--json")
    assert proc.returncode == 0, proc.stderr
    _check_summary(proc.stdout, 500)
    assert proc.stderr == ""  # no progress when standard error is not a terminal


@pytest.mark.redis
def test_redis_and_the_queue_is_deleted(unique: Callable[..., str]) -> None:
    import redis

    prefix = unique("clib") + ":"
    proc = kombu("bench", REDIS, "-n", "300", "--size", "64", "--json", "--persistent",
                 "-o", f"global_keyprefix={prefix}")
    assert proc.returncode == 0, proc.stderr
    assert _check_summary(proc.stdout, 300)["persistent"] is True
    client = redis.Redis.from_url(REDIS)
    try:
        left = list(client.scan_iter(match=prefix + "*", count=1000))
        for key in left:
            client.delete(key)
        assert [k for k in left if b"kombu-bench-" in k] == []
    finally:
        client.close()


@pytest.mark.rabbitmq
def test_amqp_and_the_queue_is_deleted(unique: Callable[..., str]) -> None:
    queue = unique("clib")
    proc = kombu("bench", AMQP, "-n", "300", "--size", "64", "--json", "--queue", queue,
                 secret="guest")
    assert proc.returncode == 0, proc.stderr
    _check_summary(proc.stdout, 300)
    with Connection(AMQP) as conn:
        channel = conn.channel()
        with pytest.raises(conn.channel_errors, match="NOT_FOUND"):
            channel.queue_declare(queue, passive=True)


@pytest.mark.rabbitmq
def test_existing_queue_is_refused(unique: Callable[..., str]) -> None:
    queue = unique("clib")
    with Connection(AMQP) as conn:
        channel = conn.channel()
        channel.queue_declare(queue, auto_delete=False)
        try:
            proc = kombu("bench", AMQP, "--queue", queue, "-n", "1")
            assert proc.returncode == 2
            assert f"queue {queue!r} exists" in proc.stderr
            assert channel.queue_declare(queue, passive=True).queue == queue
        finally:
            channel.queue_delete(queue)


def test_progress_when_asked() -> None:
    proc = kombu("bench", "memory://", "-n", "200", "--progress")
    assert proc.returncode == 0, proc.stderr
    # Progress lines are redrawn with a carriage return (read back as newlines).
    progress = proc.stderr.split()
    assert progress[0] == "bench:" and "consumed 200/200" in proc.stderr.splitlines()[-1]
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["messages", "publish", "consume", "end", "latency"]
    assert "p50" in lines[-1] and "p99" in lines[-1]


def test_bad_arguments() -> None:
    proc = kombu("bench", "memory://", "--size", "3")
    assert proc.returncode == 2 and "--size at least 8" in proc.stderr
