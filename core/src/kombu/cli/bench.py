"""``kombu bench URL``: publish and consume N messages, then report rates and latency."""

from __future__ import annotations

import argparse
import json
import math
import socket
import struct
import sys
import threading
import time
import uuid
from typing import Any

from kombu.cli.common import open_connection
from kombu.cli.errors import EXIT_INCOMPLETE, CliError

__all__ = ["percentile", "run"]

_STAMP = struct.Struct("!d")
_PROGRESS_EVERY = 0.1


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


class _Publisher(threading.Thread):
    def __init__(self, args: argparse.Namespace, queue: str) -> None:
        super().__init__(name="kombu-bench-publisher", daemon=True)
        self.args = args
        self.queue = queue
        self.sent = 0
        self.started = self.finished = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        args = self.args
        try:
            conn = open_connection(args.url, args.timeout, transport_options=dict(args.options))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            return
        try:
            producer = conn.Producer(auto_declare=False)
            padding = b"x" * (args.size - _STAMP.size)
            mode = 2 if args.persistent else 1
            self.started = time.perf_counter()
            for _ in range(args.messages):
                producer.publish(_STAMP.pack(time.perf_counter()) + padding, exchange="",
                                 routing_key=self.queue, content_type="application/octet-stream",
                                 content_encoding="binary", delivery_mode=mode, retry=False)
                self.sent += 1
            self.finished = time.perf_counter()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            conn.release()


def _progress(publisher: _Publisher, received: int, total: int, start: float) -> None:
    rate = received / max(time.perf_counter() - start, 1e-9)
    sys.stderr.write(f"\rbench: published {publisher.sent}/{total}  consumed {received}/{total}"
                     f"  {rate:,.0f} msg/s ")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from kombu import Consumer, Queue

    if args.messages < 1 or args.size < _STAMP.size or args.prefetch < 0 or args.wait <= 0:
        raise CliError(f"--messages must be at least 1, --size at least {_STAMP.size}, "
                       "--prefetch 0 or more and --wait more than 0", code=2)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    name = args.queue or f"kombu-bench-{uuid.uuid4().hex[:12]}"
    conn = open_connection(args.url, args.timeout, transport_options=dict(args.options))
    latencies: list[float] = []
    first = last = 0.0
    try:
        from kombu.cli.messages import queue_exists

        if args.queue and queue_exists(conn, name):
            raise CliError(f"queue {name!r} exists: bench deletes its queue at the end, so "
                           "name one that does not exist", code=2)
        channel = conn.channel()
        queue = Queue(name, routing_key=name, durable=args.persistent, auto_delete=False)
        bound = queue(channel)
        bound.declare()
        channel.basic_qos(0, args.prefetch, False)

        def on_message(message: Any) -> None:
            nonlocal first, last
            now = time.perf_counter()
            (sent_at,) = _STAMP.unpack_from(bytes(message.body))
            latencies.append(now - sent_at)
            if not first:
                first = now
            last = now
            message.ack()

        consumer = Consumer(channel, queues=[bound], on_message=on_message, auto_declare=False)
        consumer.consume()
        publisher = _Publisher(args, name)
        start = time.perf_counter()
        publisher.start()
        shown = 0.0
        try:
            while len(latencies) < args.messages:
                if publisher.error is not None:
                    raise publisher.error
                try:
                    conn.drain_events(timeout=min(args.wait, _PROGRESS_EVERY) if show else args.wait)
                except socket.timeout:
                    if publisher.error is not None:
                        raise publisher.error from None
                    idle = time.perf_counter() - (last or start)
                    if not show or idle >= args.wait:
                        raise CliError(
                            f"received {len(latencies)} of {args.messages} messages; none "
                            f"arrived for {args.wait:g} s", code=EXIT_INCOMPLETE) from None
                if show and time.perf_counter() - shown >= _PROGRESS_EVERY:
                    _progress(publisher, len(latencies), args.messages, start)
                    shown = time.perf_counter()
        finally:
            if show:
                _progress(publisher, len(latencies), args.messages, start)
                sys.stderr.write("\n")
            publisher.join(args.wait)
            _cleanup(consumer, bound, channel)
    finally:
        conn.release()
    summary = _summary(args, publisher, latencies, start, first, last)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        _print_summary(summary)
    return 0


def _cleanup(consumer: Any, queue: Any, channel: Any) -> None:
    """Cancel, delete the bench queue and close; an error here must not hide the real one."""
    for step in (consumer.cancel, queue.delete, channel.close):
        try:
            step()
        except Exception:  # noqa: BLE001 - best effort once the run is over
            pass


def _summary(args: argparse.Namespace, publisher: _Publisher, latencies: list[float],
             start: float, first: float, last: float) -> dict[str, Any]:
    n = args.messages
    ordered = sorted(latencies)
    publish_s = publisher.finished - publisher.started
    consume_s = last - first if n > 1 else 0.0
    total_s = last - start
    return {
        "messages": n, "size": args.size, "prefetch": args.prefetch,
        "persistent": args.persistent,
        "publish_seconds": publish_s, "publish_rate": n / publish_s if publish_s > 0 else None,
        "consume_seconds": consume_s,
        "consume_rate": (n - 1) / consume_s if consume_s > 0 else None,
        "total_seconds": total_s, "total_rate": n / total_s if total_s > 0 else None,
        "latency_ms": {key: percentile(ordered, q) * 1000 for key, q in
                       (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))},
    }


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} msg/s"


def _print_summary(s: dict[str, Any]) -> None:
    mode = "persistent" if s["persistent"] else "transient"
    lat = s["latency_ms"]
    print(f"messages    {s['messages']} x {s['size']} bytes, {mode}, prefetch {s['prefetch']}")
    print(f"publish     {s['publish_seconds']:.3f} s  {_rate(s['publish_rate'])}")
    print(f"consume     {s['consume_seconds']:.3f} s  {_rate(s['consume_rate'])}")
    print(f"end to end  {s['total_seconds']:.3f} s  {_rate(s['total_rate'])}")
    print(f"latency     p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f} ms  "
          f"p99 {lat['p99']:.2f} ms  max {lat['max']:.2f} ms")
