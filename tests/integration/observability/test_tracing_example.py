"""The OpenTelemetry-style example: spans for publish and delivery, context in headers.

Run in this process on memory://, Redis (database 15) and RabbitMQ, so the
``traceparent`` header is shown to cross each transport's wire format, and
once as a script.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from helpers import run

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "otel_tracing.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("otel_tracing_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("url", [
    pytest.param("memory://", id="memory"),
    pytest.param("redis://127.0.0.1:6379/15", id="redis", marks=pytest.mark.redis),
    pytest.param("amqp://guest:guest@127.0.0.1:5672//", id="amqp",
                 marks=pytest.mark.rabbitmq),
])
def test_spans_for_publish_and_delivery_share_one_trace(url: str) -> None:
    example = _example()
    spans = example.main(url)
    assert [(s.kind, s.name.rsplit(" ", 1)[1]) for s in spans] == [
        ("PRODUCER", "publish"), ("CONSUMER", "process"),
        ("PRODUCER", "publish"), ("CONSUMER", "process")]
    order_pub, order_proc, invoice_pub, invoice_proc = spans
    # One trace; each span's parent is the one before it: the context went
    # publisher -> headers -> consumer -> (callback) publisher -> consumer.
    assert len({s.context.trace_id for s in spans}) == 1
    assert order_pub.parent is None
    assert order_proc.parent == order_pub.context
    assert invoice_pub.parent == order_proc.context
    assert invoice_proc.parent == invoice_pub.context
    assert all(s.ended and s.status == "OK" for s in spans)
    assert order_proc.attributes["messaging.source.name"].startswith("tracing-orders-")
    assert order_pub.attributes["messaging.kombu.routing_key"] == "order"
    assert order_pub.attributes["messaging.message.body.size"] == len(b'{"order": 1}')
    from kombu import observability

    assert not observability.active.publish  # the example unregistered its observer


def test_a_failing_callback_ends_the_consumer_span_with_an_error() -> None:
    example = _example()
    import kombu
    from kombu import Connection, Consumer, Producer, Queue

    tracer = example.MemoryTracer()
    observer = example.TracingObserver(tracer)
    queue = Queue("tracing-failing", durable=False)
    kombu.register_plugin(observer)
    try:
        with Connection("memory://") as conn:
            Producer(conn).publish("x", routing_key=queue.name, declare=[queue])

            def boom(body: object, message: object) -> None:
                raise KeyError("no such order")

            with Consumer(conn, [queue], callbacks=[boom]):
                with pytest.raises(KeyError):
                    conn.drain_events(timeout=2)
            assert example.current.get() is None  # the context was restored
    finally:
        kombu.unregister_plugin(observer)
    publish, process = tracer.spans
    assert (publish.status, process.status) == ("OK", "ERROR")
    assert "no such order" in process.error and process.parent == publish.context


def test_the_example_runs_as_a_script() -> None:
    out = run([sys.executable, str(EXAMPLE)], timeout=60).stdout.splitlines()
    assert len(out) == 4 and len({line.split()[1] for line in out}) == 1
    assert "PRODUCER" in out[0] and "parent: -" in out[0]
    assert "CONSUMER" in out[1] and "publish" in out[1].split("parent:")[1]
    assert all(line.endswith("status: OK") for line in out)
