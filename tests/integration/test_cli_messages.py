"""``kombu publish``, ``consume``, ``purge`` and ``queues`` against the real brokers."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.cli import KOMBU, kombu
from kombu import Connection

REDIS = "redis://127.0.0.1:6379/14"
AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A global_keyprefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"cli-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def amqp_queues() -> Iterator[list[str]]:
    """Queue and exchange names (prefix ``clix``) to delete from RabbitMQ after the test."""
    names: list[str] = []
    yield names
    if not names:
        return
    with Connection(AMQP) as conn:
        for name in names:
            channel = conn.channel()
            if "-clix-" in name:
                channel.exchange_delete(name)
            else:
                channel.queue_delete(name)
            channel.close()


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest, redis_prefix: str,
           amqp_queues: list[str]) -> Callable[..., tuple[str, list[str]]]:
    """``broker(queue)``: the URL and the extra options for that broker; cleans up after."""
    from helpers import require

    name = request.param
    require("redis" if name == "redis" else "rabbitmq")

    def make(*names: str) -> tuple[str, list[str]]:
        if name == "redis":
            return REDIS, ["-o", f"global_keyprefix={redis_prefix}"]
        amqp_queues.extend(names)
        return AMQP, []

    make.name = name  # type: ignore[attr-defined]
    return make


def _consume_json(url: str, opts: list[str], queue: str, *extra: str) -> list[dict[str, Any]]:
    out = ok(kombu("consume", url, queue, "--json", *opts, *extra))
    return [json.loads(line) for line in out.splitlines()]


def test_publish_consume_no_ack_then_ack(broker: Any, unique: Callable[..., str]) -> None:
    queue, exchange = unique("cliq"), unique("clix")
    url, opts = broker(queue, exchange)
    out = ok(kombu("publish", url, "--exchange", exchange, "--queue", queue, "--header",
                   "trace=abc", "--count", "3", "héllo wörld ✓", *opts))
    size = len("héllo wörld ✓".encode())
    assert out.strip() == (f"published 3 messages ({size} bytes) to exchange {exchange!r} "
                           f"with routing key {queue!r}")
    first = _consume_json(url, opts, queue, "--limit", "3", "--no-ack")
    assert [m["body"] for m in first] == ["héllo wörld ✓"] * 3
    assert all(m["headers"] == {"trace": "abc"} and m["exchange"] == exchange
               and m["routing_key"] == queue and m["content_type"] == "text/plain"
               and not m["redelivered"] for m in first)
    # --no-ack left them in the queue, marked redelivered.
    again = _consume_json(url, opts, queue, "--limit", "3")
    assert [m["body"] for m in again] == ["héllo wörld ✓"] * 3
    assert all(m["redelivered"] for m in again)
    # --ack (the default) took them: nothing is left.
    empty = kombu("consume", url, queue, "--wait", "0.5", *opts)
    assert empty.returncode == 11 and empty.stdout == ""
    assert "received 0 of 1 messages" in empty.stderr


def test_consume_limit_takes_exactly_that_many(broker: Any, unique: Callable[..., str]) -> None:
    queue = unique("cliq")
    exchange = unique("clix")
    url, opts = broker(queue, exchange)
    for i in range(5):
        ok(kombu("publish", url, "--exchange", exchange, "--queue", queue, f"m{i}", *opts))
    assert ok(kombu("consume", url, queue, "--limit", "2", *opts)).split() == ["m0", "m1"]
    assert ok(kombu("purge", url, queue, *opts)).strip() == f"purged 3 messages from queue {queue!r}"
    assert ok(kombu("purge", url, queue, *opts)).strip() == f"purged 0 messages from queue {queue!r}"


def test_stdin_json_and_binary_bodies(broker: Any, unique: Callable[..., str]) -> None:
    queue = unique("cliq")
    exchange = unique("clix")
    url, opts = broker(queue, exchange)
    body = json.dumps({"n": 1, "text": "ünïcode"})
    proc = subprocess.run([KOMBU, "publish", url, "--exchange", exchange, "--queue", queue,
                           "--content-type", "application/json", "-", *opts],
                          input=body.encode(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([KOMBU, "publish", url, "--exchange", exchange, "--queue", queue,
                           "--content-type", "application/octet-stream", "-", *opts],
                          input=b"\xff\x00\xfe", capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = _consume_json(url, opts, queue, "--limit", "2")
    assert json.loads(got[0]["body"]) == {"n": 1, "text": "ünïcode"}
    assert got[0]["content_type"] == "application/json"
    assert got[1] == {**got[1], "body": "/wD+", "body_encoding": "base64"}


def test_publish_rejects_invalid_json() -> None:
    proc = kombu("publish", "memory://", "--content-type", "application/json", "{nope")
    assert proc.returncode == 2
    assert proc.stderr.startswith("kombu publish: error: BODY is not valid JSON")


@pytest.mark.rabbitmq
def test_amqp_missing_queue_is_not_found(unique: Callable[..., str]) -> None:
    queue = unique("cli-missing")
    for command in ("consume", "purge"):
        proc = kombu(command, AMQP, queue, secret="guest")
        assert proc.returncode == 10, proc.stderr
        assert proc.stderr.strip() == (
            f"kombu {command}: error: no queue {queue!r} at amqp://**:**@127.0.0.1:5672//; "
            "check the name ('kombu queues URL' lists them where the transport can)")


@pytest.mark.rabbitmq
def test_amqp_cannot_list_queues() -> None:
    proc = kombu("queues", AMQP)
    assert proc.returncode == 9
    assert "AMQP 0-9-1 has no command to list queues" in proc.stderr
    assert "management API" in proc.stderr and len(proc.stderr.splitlines()) == 1


@pytest.mark.rabbitmq
def test_amqp_exchange_type_mismatch_is_one_line(unique: Callable[..., str],
                                                 amqp_queues: list[str]) -> None:
    exchange = unique("clix")
    amqp_queues.append(exchange)
    ok(kombu("publish", AMQP, "--exchange", exchange, "--exchange-type", "fanout", "x"))
    proc = kombu("publish", AMQP, "--exchange", exchange, "--exchange-type", "direct", "x")
    assert proc.returncode == 1
    assert proc.stderr.startswith("kombu publish: error: ") and "PRECONDITION_FAILED" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


@pytest.mark.redis
def test_redis_queues_from_the_binding_tables(redis_prefix: str,
                                              unique: Callable[..., str]) -> None:
    opts = ["-o", f"global_keyprefix={redis_prefix}"]
    q1, q2, exchange = unique("cliq"), unique("cliq"), unique("clix")
    ok(kombu("publish", REDIS, "--exchange", exchange, "--queue", q1, "--count", "2", "a", *opts))
    ok(kombu("publish", REDIS, "--exchange", exchange, "--queue", q2, "--routing-key", "rk",
             "b", *opts))
    ok(kombu("consume", REDIS, q2, *opts))  # q2 is now empty, still bound
    rows = json.loads(ok(kombu("queues", REDIS, "--json", *opts)))["queues"]
    assert rows == [
        {"queue": name, "messages": n, "bindings": [{"exchange": exchange, "routing_key": rk}]}
        for name, n, rk in sorted([(q1, 2, q1), (q2, 0, "rk")])]
    text = ok(kombu("queues", REDIS, "--pattern", q1, *opts)).splitlines()
    assert text[0].split()[:2] == ["QUEUE", "MESSAGES"]
    assert text[1].split() == [q1, "2", f"{exchange}/{q1}"] and len(text) == 2
    # Another prefix sees none of them.
    other = ok(kombu("queues", REDIS, "-o", f"global_keyprefix=x{redis_prefix}"))
    assert other.strip() == "no queues"


@pytest.mark.redis
def test_redis_unbound_empty_queue_gets_a_note(redis_prefix: str,
                                               unique: Callable[..., str]) -> None:
    queue = unique("cliq")
    proc = kombu("purge", REDIS, queue, "-o", f"global_keyprefix={redis_prefix}")
    assert proc.returncode == 0 and proc.stdout.strip() == f"purged 0 messages from queue {queue!r}"
    assert "Redis cannot tell an empty queue from a missing one" in proc.stderr


def test_memory_cannot_list_queues() -> None:
    proc = kombu("queues", "memory://")
    assert proc.returncode == 9 and "cannot list queues" in proc.stderr


@pytest.mark.redis
def test_redis_password_never_printed(unique: Callable[..., str]) -> None:
    """Errors of every messaging command that carry a URL with a password."""
    from helpers.redis_server import RedisServer

    password = "Msg-s3cret-Pw"
    server = RedisServer("--requirepass", password)
    try:
        url = f"redis://:{password}@127.0.0.1:{server.port}/0"
        bad = f"redis://:{password}x@127.0.0.1:{server.port}/0"
        queue, exchange = unique("cliq"), unique("clix")
        ok(kombu("publish", url, "--exchange", exchange, "--queue", queue, "x", secret=password))
        ok(kombu("queues", url, secret=password))
        assert kombu("consume", url, queue, "--json", secret=password).returncode == 0
        for args in (["publish", bad, "x"], ["consume", bad, queue], ["purge", bad, queue],
                     ["queues", bad], ["bench", bad, "-n", "1"], ["check", bad]):
            proc = kombu(*args, secret=password)
            assert proc.returncode == 6, (args, proc.stderr)
            assert proc.stderr.startswith(f"kombu {args[0]}: error: wrong credentials")
    finally:
        server.stop()
