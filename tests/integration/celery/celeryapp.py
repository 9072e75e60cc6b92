"""The Celery app of the Celery tests, configured from environment variables.

Workers, beat and ``celery events`` load it with ``-A celeryapp`` (the test
directory is their working directory); the tests build client apps from the
same ``make_app`` with the same settings.

``CT_BROKER``      broker URL
``CT_BACKEND``     result backend URL
``CT_QUEUE``       default queue (and exchange, routing key) name
``CT_CONTROL``     control (pidbox) exchange name, so that nothing broadcasts
                   on Celery's default one
``CT_EVENTS``      event exchange name
``CT_STATE``       file the tasks append one JSON line to per event
``CT_TRANSPORT``   JSON of broker_transport_options (optional)
``CT_HEARTBEAT``   broker_heartbeat in seconds (optional)
``CT_BEAT``        seconds between two beat runs of ``record('beat')`` (optional)
``CT_DISABLE_PREFETCH``  ``1`` sets ``worker_disable_prefetch`` (optional)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from celery import Celery

ENV_KEYS = ("CT_BROKER", "CT_BACKEND", "CT_QUEUE", "CT_CONTROL", "CT_EVENTS", "CT_STATE",
            "CT_TRANSPORT", "CT_HEARTBEAT", "CT_BEAT", "CT_DISABLE_PREFETCH")


def _append(state: str, event: str, token: str, request: Any, **extra: Any) -> None:
    """Append one event as a JSON line; one write below PIPE_BUF is atomic, so
    prefork children may share the file."""
    delivery = getattr(request, "delivery_info", None) or {}
    line = json.dumps({
        "event": event, "token": token, "task": request.task, "id": request.id,
        "pid": os.getpid(), "t": time.time(), "retries": request.retries,
        "redelivered": bool(delivery.get("redelivered")), **extra,
    }) + "\n"
    fd = os.open(state, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def make_app(env: Mapping[str, str]) -> Celery:
    """A Celery app with the test tasks, configured from ``env`` (``CT_*``)."""
    queue = env["CT_QUEUE"]
    state = env["CT_STATE"]
    app = Celery("celeryapp", broker=env["CT_BROKER"], backend=env["CT_BACKEND"])
    app.conf.update(
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        control_exchange=env["CT_CONTROL"],
        event_exchange=env["CT_EVENTS"],
        worker_send_task_events=True,
        task_send_sent_event=True,
        result_expires=600,
        broker_connection_retry_on_startup=True,
        broker_transport_options=json.loads(env.get("CT_TRANSPORT") or "{}"),
        beat_enable_remote_control=True,
        beat_max_loop_interval=1,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    if env.get("CT_HEARTBEAT"):
        app.conf.broker_heartbeat = float(env["CT_HEARTBEAT"])
    if env.get("CT_DISABLE_PREFETCH") == "1":
        app.conf.worker_disable_prefetch = True
    if env.get("CT_BEAT"):
        app.conf.beat_schedule = {
            "record-beat": {"task": "celeryapp.record", "schedule": float(env["CT_BEAT"]),
                            "args": ("beat",)},
        }

    @app.task(name="celeryapp.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="celeryapp.record", shared=False, bind=True)
    def record(self: Any, token: str) -> str:
        _append(state, "run", token, self.request)
        return token

    @app.task(name="celeryapp.flaky", shared=False, bind=True, max_retries=5)
    def flaky(self: Any, token: str, failures: int = 2) -> int:
        _append(state, "attempt", token, self.request)
        if self.request.retries < failures:
            raise self.retry(countdown=0.2)
        return int(self.request.retries)

    @app.task(name="celeryapp.slow", shared=False, bind=True, acks_late=True)
    def slow(self: Any, token: str, seconds: float) -> str:
        _append(state, "start", token, self.request)
        time.sleep(seconds)
        _append(state, "done", token, self.request)
        return token

    @app.task(name="celeryapp.gated", shared=False, bind=True, acks_late=True)
    def gated(self: Any, token: str, gate: str, timeout: float = 30.0) -> str:
        """Run until the file ``gate`` exists (at most ``timeout`` seconds)."""
        _append(state, "start", token, self.request)
        deadline = time.monotonic() + timeout
        while not os.path.exists(gate):
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {gate} not opened within {timeout}s")
            time.sleep(0.02)
        _append(state, "done", token, self.request)
        return token

    @app.task(name="celeryapp.tsum", shared=False)
    def tsum(values: list[int]) -> int:
        return sum(values)

    return app


app = make_app(os.environ) if "CT_BROKER" in os.environ else None
