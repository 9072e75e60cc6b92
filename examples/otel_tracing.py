"""Tracing kombu messages the OpenTelemetry way, through kombu's observability hooks.

A publish gets a PRODUCER span and its trace context travels in the message
headers (W3C ``traceparent``); the delivery gets a CONSUMER span whose parent
is the publisher's span, current while the consumer's callbacks run, so a
message published from a callback continues the same trace.

The tracer here is a small in-example interface (:class:`Tracer`,
:class:`Span`) with an in-memory implementation, so the example needs no
OpenTelemetry package; an adapter to ``opentelemetry.trace`` implements the
same three calls (``start_span``, ``inject``, ``extract``).

    python examples/otel_tracing.py [URL]      # default memory://
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import kombu

TRACEPARENT = "traceparent"


@dataclass(frozen=True)
class SpanContext:
    """What crosses process boundaries: the trace and the span a child hangs under."""

    trace_id: str
    span_id: str

    def to_traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"

    @classmethod
    def from_traceparent(cls, value: Any) -> SpanContext | None:
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        parts = value.split("-") if isinstance(value, str) else []
        if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
            return None
        return cls(parts[1], parts[2])


@dataclass
class Span:
    name: str
    kind: str  # "PRODUCER" or "CONSUMER"
    context: SpanContext
    parent: SpanContext | None
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "UNSET"  # "OK" or "ERROR" once ended
    error: str | None = None
    ended: bool = False

    def end(self, exc: BaseException | None = None) -> None:
        self.status, self.error = ("ERROR", repr(exc)) if exc is not None else ("OK", None)
        self.ended = True


class Tracer(Protocol):
    """The three calls the observer needs (OpenTelemetry's tracer and propagator have them)."""

    def start_span(self, name: str, kind: str, parent: SpanContext | None,
                   attributes: dict[str, Any]) -> Span: ...

    def inject(self, context: SpanContext, carrier: Any) -> None: ...

    def extract(self, carrier: Any) -> SpanContext | None: ...


class MemoryTracer:
    """Keeps every span in :attr:`spans`; ids are random hex, as W3C wants them."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def start_span(self, name: str, kind: str, parent: SpanContext | None,
                   attributes: dict[str, Any]) -> Span:
        trace_id = parent.trace_id if parent is not None else os.urandom(16).hex()
        span = Span(name, kind, SpanContext(trace_id, os.urandom(8).hex()), parent,
                    dict(attributes))
        with self._lock:
            self.spans.append(span)
        return span

    def inject(self, context: SpanContext, carrier: Any) -> None:
        carrier[TRACEPARENT] = context.to_traceparent()

    def extract(self, carrier: Any) -> SpanContext | None:
        return SpanContext.from_traceparent(carrier.get(TRACEPARENT))


#: The span context that new spans hang under (set while a consumer callback runs).
current: contextvars.ContextVar[SpanContext | None] = contextvars.ContextVar(
    "current_span_context", default=None)


class TracingObserver:
    """A kombu observer plugin: spans for publish and delivery, context through headers."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self._local = threading.local()  # publishes in flight, per thread

    def _publishing(self) -> list[Span]:
        stack = getattr(self._local, "publishing", None)
        if stack is None:
            stack = self._local.publishing = []
        return stack

    @kombu.hookimpl
    def kombu_before_publish(self, exchange: str, routing_key: str, headers: Any,
                             body_size: int) -> None:
        span = self.tracer.start_span(
            f"{exchange or routing_key} publish", "PRODUCER", current.get(), {
                "messaging.system": "kombu",
                "messaging.operation": "publish",
                "messaging.destination.name": exchange,
                "messaging.kombu.routing_key": routing_key,
                "messaging.message.body.size": body_size,
            })
        self.tracer.inject(span.context, headers)  # travels with the message
        self._publishing().append(span)

    @kombu.hookimpl
    def kombu_after_publish(self, exc: BaseException | None) -> None:
        stack = self._publishing()
        if stack:
            stack.pop().end(exc)

    @kombu.hookimpl
    def kombu_message_delivered(self, message: Any, queue: str | None, exchange: str,
                                routing_key: str, headers: Any, redelivered: bool) -> None:
        span = self.tracer.start_span(
            f"{queue} process", "CONSUMER", self.tracer.extract(headers), {
                "messaging.system": "kombu",
                "messaging.operation": "process",
                "messaging.source.name": queue,
                "messaging.destination.name": exchange,
                "messaging.kombu.routing_key": routing_key,
                "messaging.kombu.redelivered": redelivered,
            })
        # Kept on the message (its __dict__) until its callbacks are done.
        message.__dict__["_trace"] = (span, current.set(span.context))

    @kombu.hookimpl
    def kombu_message_handled(self, message: Any, exc: BaseException | None) -> None:
        trace = message.__dict__.pop("_trace", None)
        if trace is not None:
            span, token = trace
            current.reset(token)
            span.end(exc)


def main(url: str = "memory://") -> list[Span]:
    """Publish a message, consume it, and publish a follow-up from the callback."""
    from kombu import Connection, Consumer, Exchange, Producer, Queue

    tracer = MemoryTracer()
    observer = TracingObserver(tracer)
    tag = os.urandom(4).hex()
    exchange = Exchange(f"tracing-{tag}", "direct", durable=False)
    orders = Queue(f"tracing-orders-{tag}", exchange, routing_key="order", durable=False)
    invoices = Queue(f"tracing-invoices-{tag}", exchange, routing_key="invoice",
                     durable=False)
    kombu.register_plugin(observer)
    try:
        with Connection(url) as conn:
            producer = Producer(conn, exchange=exchange)
            producer.publish({"order": 1}, routing_key="order", declare=[orders, invoices])

            def on_order(body: Any, message: Any) -> None:
                producer.publish({"invoice_for": body["order"]}, routing_key="invoice")
                message.ack()

            def on_invoice(body: Any, message: Any) -> None:
                message.ack()

            with Consumer(conn, [orders], callbacks=[on_order]):
                conn.drain_events(timeout=5)
            with Consumer(conn, [invoices], callbacks=[on_invoice]):
                conn.drain_events(timeout=5)
            for queue in (orders, invoices):
                queue(conn.default_channel).delete()
            exchange(conn.default_channel).delete()
    finally:
        kombu.unregister_plugin(observer)
    return tracer.spans


if __name__ == "__main__":
    spans = main(sys.argv[1] if len(sys.argv) > 1 else "memory://")
    names = {span.context.span_id: span.name for span in spans}
    for span in spans:
        parent = names.get(span.parent.span_id, "?") if span.parent else "-"
        print(f"trace {span.context.trace_id[:8]}  {span.kind:<8}  {span.name:<40}"
              f"  parent: {parent}  status: {span.status}")
