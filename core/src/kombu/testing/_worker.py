"""Child processes of the conformance kit: ``python -m kombu.testing._worker CMD ARGS``.

``ARGS`` is a JSON list.  A consumer prints ``ready`` once it consumes; the
last line of output is the JSON result.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any, Callable

from kombu import Connection, Consumer, Exchange, Producer, Queue

STOP = "__kombu_kit_stop__"


def consume_until_stop(url: str, queue_name: str, exchange: str, routing_key: str,
                       deadline: float) -> list[Any]:
    """Consume (prefetch 1, acking) until a stop message or ``deadline`` seconds."""
    got: list[Any] = []
    stop = False

    def on_message(body: Any, message: Any) -> None:
        nonlocal stop
        message.ack()
        if body == STOP:
            stop = True
        else:
            got.append(body)

    queue = Queue(queue_name, Exchange(exchange), routing_key=routing_key)
    end = time.monotonic() + deadline
    with Connection(url) as conn:
        with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=1):
            print("ready", flush=True)
            while not stop and time.monotonic() < end:
                try:
                    conn.drain_events(timeout=0.5)
                except socket.timeout:
                    pass
    return got


def publish(url: str, exchange: str, routing_key: str, bodies: list[Any]) -> int:
    """Publish each body to ``exchange`` with ``routing_key``."""
    with Connection(url) as conn:
        producer = Producer(conn.default_channel, Exchange(exchange), routing_key=routing_key)
        for body in bodies:
            producer.publish(body)
    return len(bodies)


COMMANDS: dict[str, Callable[..., Any]] = {"consume": consume_until_stop, "publish": publish}


def main(argv: list[str]) -> int:
    command, args = argv[0], json.loads(argv[1])
    result = COMMANDS[command](*args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main(sys.argv[1:]))
