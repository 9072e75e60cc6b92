"""Interoperability with real kombu 5.x sharing the same Redis.

Real kombu runs in its own virtualenv (``.venv-kombu`` at the repository
root) as a subprocess: it publishes what this transport consumes, and
consumes what this transport publishes, over direct, topic and fanout
exchanges, with priorities.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.brokers import under_ci
from helpers.kombu5 import kombu5_python
from kombu import Consumer, Exchange, Producer, Queue

pytestmark = pytest.mark.redis

SCRIPT = textwrap.dedent("""
    import json, socket, sys, time
    import kombu
    from kombu import Connection, Consumer, Exchange, Producer, Queue
    spec = json.loads(sys.argv[1])
    conn = Connection(spec["url"], transport_options=spec["options"])
    ex = Exchange(spec["exchange"], spec["type"])
    queues = [Queue(q, ex, routing_key=rk) for q, rk in spec["queues"]]
    if spec["mode"] == "publish":
        producer = Producer(conn, exchange=ex)
        for body, rk, priority in spec["messages"]:
            producer.publish(body, routing_key=rk, priority=priority, declare=queues)
        print(json.dumps({"version": kombu.__version__}), flush=True)
    else:
        got = []
        def on_message(body, message):
            got.append([body, message.delivery_info["routing_key"]])
            message.ack()
        with Consumer(conn, queues, callbacks=[on_message], prefetch_count=1):
            print("ready", flush=True)
            deadline = time.monotonic() + 15
            while len(got) < spec["expect"] and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
        print(json.dumps(got), flush=True)
""")


@pytest.fixture(scope="module")
def kombu_python() -> Path:
    python = kombu5_python()
    probe = subprocess.run([python, "-c", "import kombu.transport.redis, redis"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        message = (f"real kombu's Redis transport does not import with {python}: {last} "
                   "(install 'kombu[redis]>=5,<6' there)")
        if under_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return Path(python)


def _run(python: Path, spec: dict[str, Any]) -> subprocess.Popen:
    return subprocess.Popen([str(python), "-c", SCRIPT, json.dumps(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _spec(url: str, prefix: str, exchange: str, type_: str, queues: list[list[str]],
          **extra: Any) -> dict[str, Any]:
    return {"url": url, "options": {"global_keyprefix": prefix}, "exchange": exchange,
            "type": type_, "queues": queues, **extra}


@pytest.mark.parametrize("type_,bind,keys", [
    ("direct", "rk", ["rk", "rk", "rk"]),
    ("topic", "a.*", ["a.x", "a.y", "a.z"]),
])
def test_kombu_publishes_we_consume(kombu_python: Path, connect: Any, names: Any,
                                    redis_url: str, type_: str, bind: str,
                                    keys: list[str], drain: Any, quiet: Any) -> None:
    exchange, queue = names("ex"), names("q")
    messages = [[{"i": i}, key, pri] for i, (key, pri) in enumerate(zip(keys, (9, 0, 3)))]
    proc = _run(kombu_python, _spec(redis_url, connect.prefix, exchange, type_,
                                    [[queue, bind]], mode="publish", messages=messages))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["version"].startswith("5.")
    conn = connect()
    got: list[Any] = []
    q = Queue(queue, Exchange(exchange, type_), routing_key=bind)
    with Consumer(conn, [q], callbacks=[lambda b, m: (got.append(b), m.ack())]):
        drain(conn, got, 3)
        assert quiet(conn)
    assert got == [{"i": 1}, {"i": 2}, {"i": 0}]  # priority 0, then 3, then 9


def test_kombu_fanout_reaches_our_consumers(kombu_python: Path, connect: Any, names: Any,
                                            redis_url: str, quiet: Any) -> None:
    exchange, first, second = names("ex"), names("q"), names("q")
    conn = connect()
    ex = Exchange(exchange, "fanout")
    got: dict[str, list[Any]] = {first: [], second: []}

    def collect(name: str) -> Any:
        return lambda body, message: (got[name].append(body), message.ack())

    consumers = [Consumer(conn, [Queue(name, ex)], callbacks=[collect(name)])
                 for name in (first, second)]
    for consumer in consumers:
        consumer.consume()
    try:
        assert quiet(conn)  # subscribed (PUB/SUB delivers only to listeners)
        messages = [[{"i": i}, "", 0] for i in range(3)]
        proc = _run(kombu_python, _spec(redis_url, connect.prefix, exchange, "fanout",
                                        [], mode="publish", messages=messages))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        deadline = time.monotonic() + 10
        while len(got[first]) + len(got[second]) < 6 and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=0.2)
            except TimeoutError:
                pass
        assert quiet(conn)
    finally:
        for consumer in consumers:
            consumer.cancel()
    assert got[first] == got[second] == [{"i": 0}, {"i": 1}, {"i": 2}]


@pytest.mark.parametrize("type_,bind,key", [
    ("direct", "rk", "rk"), ("topic", "a.#", "a.b.c"), ("fanout", "", ""),
])
def test_we_publish_kombu_consumes(kombu_python: Path, connect: Any, names: Any,
                                   redis_url: str, type_: str, bind: str, key: str) -> None:
    exchange, queue = names("ex"), names("q")
    conn = connect()
    ex = Exchange(exchange, type_)
    q = Queue(queue, ex, routing_key=bind)

    def publish() -> None:
        producer = Producer(conn, exchange=ex)
        for i, pri in enumerate((6, 0, 3)):
            producer.publish({"i": i}, routing_key=key, priority=pri, declare=[q])

    if type_ != "fanout":  # queued first, so priorities decide the order
        q(conn.default_channel).declare()
        publish()
    proc = _run(kombu_python, _spec(redis_url, connect.prefix, exchange, type_,
                                    [[queue, bind]], mode="consume", expect=3))
    assert proc.stdout is not None and proc.stderr is not None
    # Read through the same buffered file throughout (communicate() would
    # skip lines already buffered by readline()).
    assert proc.stdout.readline().strip() == "ready"
    if type_ == "fanout":
        time.sleep(0.5)  # kombu subscribes on its first poll
        publish()
    out, err = proc.stdout.read(), proc.stderr.read()  # the script stops within 15s
    assert proc.wait(60) == 0, err
    proc.stdout.close()
    proc.stderr.close()
    got = json.loads(out.strip().splitlines()[-1])
    bodies = [body for body, _ in got]
    if type_ == "fanout":
        assert sorted(b["i"] for b in bodies) == [0, 1, 2]
    else:
        assert bodies == [{"i": 1}, {"i": 2}, {"i": 0}]
    assert all(rk == key for _, rk in got)
