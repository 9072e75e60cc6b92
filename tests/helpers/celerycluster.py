"""Celery clusters for the real-Celery tests (``tests/integration/celery``).

A ``Cluster`` is one configuration (broker, result backend, pool) with its
own queue, control and event exchange names, Redis database 8 for broker
and results, and on RabbitMQ a virtual host given by the caller.  Workers,
beat and ``celery events`` run as ``helpers.celeryproc`` subprocesses with
``-A celeryapp`` (the app module of the test directory).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers.brokers import under_ci
from helpers.celeryproc import CeleryProcess, celery_argv
from helpers.processes import wait_until

HERE = Path(__file__).resolve().parents[1] / "integration" / "celery"
REDIS_DB_URL = "redis://127.0.0.1:6379/8"
AMQP_BASE = "amqp://guest:guest@127.0.0.1:5672"


def load_celeryapp() -> Any:
    """This directory's ``celeryapp`` module (test modules are not on sys.path)."""
    module = sys.modules.get("celeryapp")
    if module is None:
        spec = importlib.util.spec_from_file_location("celeryapp", HERE / "celeryapp.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["celeryapp"] = module
        spec.loader.exec_module(module)
    return module


def rabbitmqctl(*args: str, timeout: float = 30) -> str:
    """Run ``rabbitmqctl``; skip (fail under CI) when it is missing."""
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        if under_ci():
            raise AssertionError("rabbitmqctl is not installed (the Celery tests on RabbitMQ "
                                 "create a virtual host of their own)")
        pytest.skip("rabbitmqctl is not installed")
    proc = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


@dataclass
class Cluster:
    """One Celery configuration: its settings, its processes and a client app."""

    broker: str  # "redis" or "amqp"
    pool: str  # "solo" or "prefork"
    env: dict[str, str]
    directory: Path
    processes: list[CeleryProcess] = field(default_factory=list)
    worker: Any = None
    _app: Any = None
    _starts: int = 0

    @property
    def app(self) -> Any:
        """The client app (same settings as the worker)."""
        if self._app is None:
            self._app = load_celeryapp().make_app(self.env)
        return self._app

    def task(self, name: str) -> Any:
        return self.app.tasks[f"celeryapp.{name}"]

    @property
    def queue(self) -> str:
        return self.env["CT_QUEUE"]

    def spawn(self, kind: str, *args: str, env: dict[str, str] | None = None) -> CeleryProcess:
        """Start ``celery -A celeryapp KIND ARGS`` with this cluster's settings."""
        self._starts += 1
        proc = CeleryProcess(f"{kind}-{self._starts}",
                             [*celery_argv(), "-A", "celeryapp", kind, *args],
                             env={**self.env, **(env or {})}, cwd=str(HERE),
                             log_dir=self.directory)
        self.processes.append(proc)
        return proc

    def start_worker(self, *extra: str, queues: str | None = None,
                     env: dict[str, str] | None = None) -> CeleryProcess:
        """A worker with events, gossip, mingle and heartbeats on; returns once it is ready."""
        self._starts += 1
        pool = ["-P", "solo"] if self.pool == "solo" else ["-P", "prefork", "-c", "2"]
        worker = self.spawn(
            "worker", "-l", "info", "-E", *pool, "-Q", queues or self.queue,
            "-n", f"w{self._starts}-{self.env['CT_QUEUE']}@%h", *extra, env=env)
        worker.wait_for(" ready.")
        return worker

    def events(self) -> list[dict[str, Any]]:
        """Events the tasks recorded (``CT_STATE``), in file order."""
        try:
            with open(self.env["CT_STATE"]) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def runs(self, token: str, event: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events()
                if e["token"] == token and (event is None or e["event"] == event)]

    def wait_runs(self, token: str, count: int = 1, event: str | None = None,
                  timeout: float = 30.0) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.runs(token, event)) >= count, timeout=timeout,
                   message=f"{count} {event or 'event'}(s) of {token!r}")
        return self.runs(token, event)

    def run_cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``celery -A celeryapp ARGS`` in the foreground, bounded."""
        return subprocess.run([*celery_argv(), "-A", "celeryapp", *args], cwd=str(HERE),
                              env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def close(self, delete_queues: bool = True) -> None:
        """Stop every process, delete the cluster's queue, close the client."""
        for proc in self.processes:
            if proc.alive():
                proc.stop(signal.SIGTERM, timeout=10)
            else:
                proc.kill()
        if delete_queues:
            delete_queue(self, self.queue)
        if self.broker == "redis":
            forget_redis_names(self.env["CT_CONTROL"].rsplit("-", 1)[-1])
        if self._app is not None:
            close_client(self._app)

    def logs(self) -> str:
        return "\n".join(f"----- {proc.name} ({' '.join(proc.argv[3:])})\n{proc.log()[-20000:]}"
                         for proc in self.processes)


def forget_redis_names(tag: str) -> None:
    """Delete database 8's keys that carry ``tag`` (queues, bindings, pidbox)."""
    import redis

    client = redis.Redis.from_url(REDIS_DB_URL, socket_timeout=5)
    try:
        keys = list(client.scan_iter(f"*{tag}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def close_client(app: Any) -> None:
    """Close what a client app opened: its pools and its result backend's
    connections (``app.close()`` leaves the backend's open, with kombu 5.x too)."""
    backend = app._backend  # None when the app never made one
    app.close()
    consumer = getattr(backend, "result_consumer", None) if backend is not None else None
    if consumer is not None and (getattr(consumer, "_pubsub", None) is not None
                                 or getattr(consumer, "_connection", None) is not None):
        try:
            consumer.stop()
        except Exception as exc:  # noqa: BLE001  (cleanup only; say what failed)
            print(f"closing the result consumer failed: {exc!r}")
    client = backend.__dict__.get("client") if backend is not None else None
    if client is not None:
        client.close()
        client.connection_pool.disconnect()
    # Remote control publishes through kombu's global producer pools.
    import kombu.pools
    kombu.pools.reset()


def make_cluster(broker: str, pool: str, directory: Path, *, backend: str | None = None,
                 vhost: str | None = None, broker_url: str | None = None,
                 **extra_env: str) -> Cluster:
    """Settings of a new cluster: unique names, Redis DB 8, the given vhost on RabbitMQ."""
    tag = uuid.uuid4().hex[:8]
    if broker == "redis":
        url = broker_url or REDIS_DB_URL
        transport = {"visibility_timeout": 5, "unacked_restore_interval": 1}
    else:
        url = broker_url or f"{AMQP_BASE}/{vhost}"
        transport = {}
    env = {
        "CT_BROKER": url,
        "CT_BACKEND": backend or REDIS_DB_URL,
        "CT_QUEUE": f"ct-{broker}-{pool}-{tag}",
        "CT_CONTROL": f"ct-control-{tag}",
        "CT_EVENTS": f"ct-events-{tag}",
        "CT_STATE": str(directory / "events.jsonl"),
        "CT_TRANSPORT": json.dumps(transport),
        **extra_env,
    }
    return Cluster(broker, pool, env, directory)


def broker_params() -> list[Any]:
    return [pytest.param(("redis", "solo"), marks=pytest.mark.redis, id="redis-solo"),
            pytest.param(("redis", "prefork"), marks=pytest.mark.redis, id="redis-prefork"),
            pytest.param(("amqp", "solo"), marks=pytest.mark.rabbitmq, id="amqp-solo"),
            pytest.param(("amqp", "prefork"), marks=pytest.mark.rabbitmq, id="amqp-prefork")]


def delete_queue(cluster: Cluster, *names: str) -> None:
    """Remove the named queues from the broker (best effort, bounded)."""
    try:
        with cluster.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
            channel = conn.default_channel
            for name in names:
                try:
                    channel.queue_delete(name)
                except Exception:  # noqa: BLE001  (cleanup only)
                    channel = conn.channel()
    except Exception as exc:  # noqa: BLE001  (cleanup only)
        print(f"could not delete {names}: {exc!r}")
