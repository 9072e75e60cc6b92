"""Fixtures and helpers the conformance kit's tests share.

Imported into a test module through ``from kombu.testing.suite import *``;
``transport_url`` itself comes from the test module, a conftest, or the
``--kombu-url`` option of :mod:`kombu.testing.pytest_plugin`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Callable, NoReturn

import pytest

from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.testing.requirements import CAPABILITIES, Requirements

__all__ = (
    "LIMITS",
    "_kit_cleanup",
    "kombu_connection",
    "transport_requirements",
    "transport_unreachable_url",
)

class Limits:
    """Bounds of the kit's waits; ``--kombu-wait`` sets :attr:`wait`."""

    #: Upper bound, in seconds, on every wait for a message that should come.
    wait: float = 10.0


#: The kit's limits (one per process).
LIMITS = Limits()


@pytest.fixture
def transport_requirements() -> Requirements:
    """What the transport under test declares (override in the test module)."""
    return Requirements()


@pytest.fixture
def transport_unreachable_url(transport_url: str) -> str | None:
    """A URL of the transport whose broker cannot be reached, or None.

    By default, for a transport with a ``default_port``: the same scheme on
    127.0.0.1 at a port nothing listens on.  Override it for transports
    whose store is reached another way (a file, a socket path).
    """
    cls = Connection(transport_url).get_transport_cls()
    if not getattr(cls, "default_port", None):
        return None
    scheme = transport_url.split("://", 1)[0] if "://" in transport_url else "amqp"
    return f"{scheme}://127.0.0.1:{closed_port()}//"


@pytest.fixture
def kombu_connection(transport_url: str) -> Iterator[Connection]:
    """A connected :class:`~kombu.Connection` to the transport under test."""
    conn = Connection(transport_url)
    conn.connect()
    try:
        yield conn
    finally:
        conn.close()


#: Names the running test created, deleted by :func:`_kit_cleanup`.
_created: list[tuple[str, str]] = []


def name(kind: str) -> str:
    """A unique queue (``'q'``) or exchange (``'x'``) name, deleted after the test."""
    made = f"kombu-kit-{kind}-{uuid.uuid4().hex[:10]}"
    _created.append((kind, made))
    return made


@pytest.fixture(autouse=True)
def _kit_cleanup(transport_url: str) -> Iterator[None]:
    """Delete the queues and exchanges a test made (brokers are shared)."""
    _created.clear()
    yield
    if not _created:
        return
    try:
        conn = Connection(transport_url, connect_timeout=2)
        conn.connect()
    except Exception:  # noqa: BLE001 - best effort; the test reports real failures
        _created.clear()
        return
    with conn:
        for kind, made in reversed(_created):
            channel = conn.channel()
            try:
                if kind != "x":  # queues (SimpleQueue names an exchange too)
                    channel.queue_delete(made)
                if kind != "q":
                    channel.exchange_delete(made)
            except Exception:  # noqa: BLE001 - the entity may not exist
                pass
            finally:
                conn.maybe_close_channel(channel)
    _created.clear()


def need(requirements: Requirements, capability: str, conn: Connection | None = None) -> None:
    """Skip the test, saying why, unless the transport declares ``capability``."""
    if not requirements.declares(capability):
        skip(f"kombu kit: capability {capability!r} ({CAPABILITIES[capability]}) "
              f"is off: {requirements.reason(capability)}")
    kind = capability.partition("_exchange")[0] if capability.endswith("_exchange") else None
    if kind and conn is not None and not conn.supports_exchange_type(kind):
        skip(f"kombu kit: {type(conn.transport).__name__}.implements.exchange_type "
              f"has no {kind!r}")


def skip(reason: str) -> NoReturn:
    """Skip, reported at the test's own location (so the summary names each test)."""
    try:
        exc = pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # pragma: no cover - pytest without item locations
        exc = pytest.skip.Exception(reason)
    raise exc


def closed_port() -> int:
    """A loopback TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def declared(conn: Connection, kind: str = "direct", routing_key: str = "rk",
             **queue_opts: Any) -> tuple[Queue, Producer]:
    """A new queue bound to a new exchange, declared, and a producer for it."""
    exchange = Exchange(name("x"), kind)
    queue = Queue(name("q"), exchange, routing_key=routing_key, **queue_opts)
    channel = conn.default_channel
    queue(channel).declare()
    return queue, Producer(channel, exchange, routing_key=routing_key)


def wait_for_count(bound: Any, n: int) -> int:
    """The queue's message count once it reaches ``n`` (brokers route asynchronously)."""
    deadline = time.monotonic() + LIMITS.wait
    count = bound.queue_declare(passive=True).message_count
    while count != n and time.monotonic() < deadline:
        time.sleep(0.02)
        count = bound.queue_declare(passive=True).message_count
    return count  # type: ignore[no-any-return]


def collect(conn: Connection, queue: Queue | Sequence[Queue], n: int, *, ack: bool = True,
            wait: float | None = None, channel: Any = None, **consumer_opts: Any) -> list[Any]:
    """Consume up to ``n`` messages as ``(body, message)`` (giving up after ``wait`` s)."""
    got: list[Any] = []

    def on_message(body: Any, message: Any) -> None:
        got.append((body, message))
        if ack and not consumer_opts.get("no_ack"):
            message.ack()

    queues = [queue] if isinstance(queue, Queue) else list(queue)
    deadline = time.monotonic() + (LIMITS.wait if wait is None else wait)
    consumer = Consumer(channel or conn, queues, callbacks=[on_message], **consumer_opts)
    consumer.consume()
    try:
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                conn.drain_events(timeout=min(left, 1.0))
            except socket.timeout:
                pass
    finally:
        if channel is None:
            consumer.cancel()
    return got


def nothing_more(conn: Connection, queue: Queue, wait: float = 0.3) -> list[Any]:
    """Bodies that still arrive from ``queue`` within ``wait`` seconds (acknowledged)."""
    return [body for body, _ in collect(conn, queue, 1, wait=wait)]


def run_worker(command: str, *args: Any, timeout: float | None = None,
               on_ready: Callable[[], Any] | None = None) -> Any:
    """Run :mod:`kombu.testing._worker` in a new process; return its JSON result.

    ``on_ready`` runs once the worker says it is consuming.
    """
    timeout = LIMITS.wait + 20 if timeout is None else timeout
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kombu.testing._worker", command, json.dumps(args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        if on_ready is not None:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                _, err = proc.communicate(timeout=timeout)
                raise AssertionError(f"worker {command} did not start: {line}{err}")
            on_ready()
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise AssertionError(f"worker {command} exited {proc.returncode}: {err.strip()}")
    return json.loads(out.strip().splitlines()[-1])


class Workers:
    """Several :func:`run_worker`-style processes started together."""

    def __init__(self, command: str, args: Sequence[Any], count: int) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.procs = [subprocess.Popen(
            [sys.executable, "-m", "kombu.testing._worker", command, json.dumps(list(args))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for _ in range(count)]

    def wait_ready(self) -> None:
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                self.kill()
                raise AssertionError(f"worker did not start: {line}{proc.stderr.read()}")  # type: ignore[union-attr]

    def results(self, timeout: float | None = None) -> list[Any]:
        timeout = LIMITS.wait + 20 if timeout is None else timeout
        out = []
        try:
            for proc in self.procs:
                stdout, stderr = proc.communicate(timeout=timeout)
                if proc.returncode != 0:
                    raise AssertionError(f"worker exited {proc.returncode}: {stderr.strip()}")
                out.append(json.loads(stdout.strip().splitlines()[-1]))
        finally:
            self.kill()
        return out

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
