"""The Celery app of ``bench/celery_bench.py``, configured from the environment.

``CB_BROKER`` broker URL; ``CB_QUEUE`` queue; ``CB_CONTROL`` / ``CB_EVENTS``
control and event exchange names (unique per run, so nothing broadcasts on
Celery's defaults); ``CB_OUT`` file each finished task appends its
completion time to (8 bytes, a double); ``CB_READY`` file the worker creates
once it is ready.
"""

from __future__ import annotations

import os
import struct
import time

from celery import Celery
from celery.signals import worker_ready

app = Celery("celery_bench_app", broker=os.environ["CB_BROKER"])
app.conf.update(
    task_default_queue=os.environ["CB_QUEUE"],
    task_default_exchange=os.environ["CB_QUEUE"],
    task_default_routing_key=os.environ["CB_QUEUE"],
    control_exchange=os.environ["CB_CONTROL"],
    event_exchange=os.environ["CB_EVENTS"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)

_out: list[int] = []  # this process's descriptor of CB_OUT (opened after fork)


@app.task(name="bench.noop", ignore_result=True, shared=False)
def noop() -> None:
    if not _out:
        _out.append(os.open(os.environ["CB_OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    os.write(_out[0], struct.pack("d", time.time()))


@worker_ready.connect
def _ready(**_: object) -> None:
    with open(os.environ["CB_READY"], "w") as f:
        f.write(str(os.getpid()))
