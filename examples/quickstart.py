"""kombu's usage examples, run end to end on the in-process memory:// broker.

    ./dev demo            (or: python examples/quickstart.py)

Connects by URL and by parameters, retries a connection with a policy,
publishes through the global connection and producer pools, parses broker
URLs and consumes what was published with ``kombu.common.eventloop``.  It
prints each step and exits non-zero if anything does not work.  Only
kombu's public API is used.
"""

from __future__ import annotations

import sys
from typing import Any

from kombu import Connection, Queue, pools
from kombu.common import eventloop
from kombu.utils.url import parse_url

URL = "memory://"


def step(title: str) -> None:
    print(f"\n== {title}")


def basic_connection() -> None:
    step("Connect by URL and by parameters")
    conn = Connection(URL)
    print(f"by URL:        {conn.as_uri()}  transport={conn.transport_cls}")
    conn = Connection(hostname="localhost", userid="guest", password="guest",
                      virtual_host="/", transport="memory")
    print(f"by parameters: {conn!r}  (the password is masked)")
    with conn:
        channel = conn.channel()
        print(f"with conn: connected={conn.connected}, opened channel {channel.channel_id}")
    print(f"after the with block: connected={conn.connected}")


def connection_with_retry() -> None:
    step("ensure_connection with a retry policy")
    conn = Connection(URL)
    errors: list[str] = []

    def on_connection_error(exc: BaseException, interval: float) -> None:
        errors.append(str(exc))
        print(f"Connection error: {exc}, retrying in {interval}s")

    with conn.ensure_connection(errback=on_connection_error, max_retries=5,
                                interval_start=1, interval_step=2, interval_max=10):
        channel = conn.channel()
        print(f"connected={conn.connected} after {len(errors)} retries; "
              f"channel {channel.channel_id} is open")


def pooled_publish(queue: Queue) -> list[dict[str, Any]]:
    step("Publish through the global pools")
    sent = [{"msg": "hello", "via": "connection pool"}, {"msg": "hello", "via": "producer pool"}]
    # The pool groups are keyed by URL here; kombu 5.x only accepts a
    # Connection as the key (pools.connections[Connection(URL)]).
    with pools.connections[URL].acquire(block=True, timeout=5) as conn:
        producer = conn.Producer()
        producer.publish(sent[0], routing_key=queue.name, declare=[queue])
        print(f"published {sent[0]} with a pooled connection")
    with pools.producers[URL].acquire(block=True, timeout=5) as producer:
        producer.publish(sent[1], routing_key=queue.name, declare=[queue])
        print(f"published {sent[1]} with a pooled producer")
    before = pools.get_limit()
    pools.set_limit(100)
    print(f"pool limit: {before} -> {pools.get_limit()}")
    return sent


def url_parsing() -> None:
    step("Parse broker URLs")
    # kombu 5.x reports the scheme it was given: 'amqp' (which selects the
    # pyamqp transport), not 'pyamqp' as some of its documentation shows.
    expected = {
        "redis://user:pass@localhost:6379/1": ("redis", "1"),
        "amqp://guest:guest@localhost:5672//": ("amqp", "/"),
    }
    for url, (transport, vhost) in expected.items():
        parsed = parse_url(url)
        shown = {**parsed, "password": "**"}
        print(f"{url.split('@')[-1]:<22} -> {shown}")
        if (parsed["transport"], parsed["virtual_host"]) != (transport, vhost):
            raise SystemExit(f"parse_url({url!r}) gave {parsed}; expected transport "
                             f"{transport!r} and virtual_host {vhost!r}")


def consume(queue: Queue, expected: list[dict[str, Any]]) -> None:
    step("Consume with eventloop")
    received: list[Any] = []

    def process_message(body: Any, message: Any) -> None:
        print(f"Processing: {body}")
        received.append(body)
        message.ack()

    with Connection(URL) as conn:
        consumer = conn.Consumer(queue, callbacks=[process_message])
        consumer.consume()
        for _ in eventloop(conn, limit=len(expected), timeout=5.0):
            pass
        consumer.cancel()
    if received != expected:
        raise SystemExit(f"received {received}, expected {expected}")
    print(f"received all {len(received)} messages, in order")


def main() -> int:
    queue = Queue("test_queue")
    basic_connection()
    connection_with_retry()
    sent = pooled_publish(queue)
    url_parsing()
    consume(queue, sent)
    print("\nquickstart: everything worked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
