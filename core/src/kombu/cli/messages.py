"""``kombu publish``, ``consume``, ``purge`` and ``queues``."""

from __future__ import annotations

import argparse
import base64
import fnmatch
import json
import socket
import sys
from typing import Any

from kombu.cli.common import display_url, open_connection
from kombu.cli.errors import EXIT_INCOMPLETE, EXIT_NOT_FOUND, EXIT_UNSUPPORTED, CliError

__all__ = ["consume", "list_queues", "publish", "purge", "queue_exists", "queues"]


def _connect(args: argparse.Namespace, confirm: bool = False) -> Any:
    return open_connection(args.url, args.timeout, transport_options=dict(args.options),
                           confirm=confirm)


# -- publish ------------------------------------------------------------------

def _read_body(args: argparse.Namespace) -> bytes:
    if args.body == "-":
        data: bytes = sys.stdin.buffer.read()
    else:
        data = args.body.encode("utf-8", "surrogateescape")
    if args.content_type == "application/json":
        try:
            json.loads(data)
        except ValueError as exc:
            raise CliError(f"BODY is not valid JSON ({exc}); fix it or pass another "
                           "--content-type", code=2) from None
    return data


def publish(args: argparse.Namespace) -> int:
    from kombu import Exchange, Queue

    if args.count < 1:
        raise CliError("--count must be at least 1", code=2)
    body = _read_body(args)
    routing_key = args.routing_key if args.routing_key is not None else (args.queue or "")
    conn = _connect(args, confirm=True)
    try:
        exchange = Exchange(args.exchange, args.exchange_type)
        declare: list[Any] = []
        if args.queue:
            declare.append(Queue(args.queue, exchange, routing_key=routing_key))
        elif args.exchange:
            declare.append(exchange)
        producer = conn.Producer(auto_declare=False)
        for _ in range(args.count):
            producer.publish(body, exchange=exchange, routing_key=routing_key,
                             content_type=args.content_type, content_encoding="binary",
                             headers=dict(args.headers) or None, priority=args.priority,
                             delivery_mode=1 if args.transient else 2,
                             declare=declare, retry=False)
            declare = []
        where = f"exchange {args.exchange!r}" if args.exchange else "the default exchange"
        plural = "" if args.count == 1 else "s"
        print(f"published {args.count} message{plural} ({len(body)} bytes) to {where} "
              f"with routing key {routing_key!r}")
        return 0
    finally:
        conn.release()


# -- queues: existence and listing ----------------------------------------------

def _redis_tables(channel: Any) -> dict[str, list[tuple[str, str]]]:
    """queue -> [(exchange, routing key)] from kombu's Redis binding tables."""
    client = channel.client
    prefix = channel.global_keyprefix + channel.keyprefix_queue % ("",)
    escaped = "".join(f"[{c}]" if c in "*?[]\\" else c for c in prefix)
    sep = channel.sep
    found: dict[str, list[tuple[str, str]]] = {}
    for raw_key in client.scan_iter(match=escaped + "*", count=1000):
        key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
        exchange = key[len(prefix):]
        for member in client.smembers(key):
            text = member.decode() if isinstance(member, bytes) else member
            parts = text.split(sep)
            if len(parts) == 3:
                routing_key, _, queue = parts
                found.setdefault(queue, []).append((exchange, routing_key))
    return found


def list_queues(conn: Any) -> list[dict[str, Any]]:
    """Queues the broker behind ``conn`` knows, or CliError(EXIT_UNSUPPORTED)."""
    driver = getattr(conn.transport, "driver_type", "")
    if driver == "redis":
        channel = conn.default_channel
        tables = _redis_tables(channel)
        return [{"queue": queue, "messages": int(channel._size(queue)),
                 "bindings": [{"exchange": e, "routing_key": k} for e, k in sorted(bindings)]}
                for queue, bindings in sorted(tables.items())]
    if driver == "amqp":
        raise CliError(
            "AMQP 0-9-1 has no command to list queues; use the RabbitMQ management API "
            "(rabbitmqadmin list queues, or GET /api/queues) or 'rabbitmqctl list_queues'",
            code=EXIT_UNSUPPORTED)
    raise CliError(
        f"the {driver or type(conn.transport).__name__} transport cannot list queues "
        "(an in-process broker has nothing to show to another process)", code=EXIT_UNSUPPORTED)


def _not_found(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "NotFound" in names or "NOT_FOUND" in str(exc) or getattr(exc, "code", None) == 404


def queue_exists(conn: Any, queue: str) -> bool | None:
    """Whether ``queue`` exists; None when the broker cannot tell.

    Redis keeps no record of an empty queue that no exchange binds (its
    list is gone once empty), so there a queue that is neither found nor
    bound is None rather than False.
    """
    channel = conn.channel()
    try:
        channel.queue_declare(queue=queue, passive=True)
        return True
    except Exception as exc:
        if not _not_found(exc):
            raise
    finally:
        try:
            channel.close()
        except Exception:  # noqa: BLE001 - the broker closed it already
            pass
    if getattr(conn.transport, "driver_type", "") == "redis":
        return True if queue in _redis_tables(conn.default_channel) else None
    return False


def _require_queue(conn: Any, args: argparse.Namespace) -> None:
    exists = queue_exists(conn, args.queue)
    if exists is None:
        print(f"kombu {args.command}: note: queue {args.queue!r} holds no messages and no "
              "exchange binds it, so it may not exist (Redis cannot tell an empty queue from "
              "a missing one)", file=sys.stderr)
    elif not exists:
        raise CliError(f"no queue {args.queue!r} at {display_url(args.url)}; check the name "
                       "('kombu queues URL' lists them where the transport can)",
                       code=EXIT_NOT_FOUND)


def queues(args: argparse.Namespace) -> int:
    conn = _connect(args)
    try:
        rows = [row for row in list_queues(conn) if fnmatch.fnmatchcase(row["queue"], args.pattern)]
    finally:
        conn.release()
    if args.json:
        print(json.dumps({"queues": rows}, sort_keys=True))
        return 0
    if not rows:
        print("no queues")
        return 0
    width = max(len("QUEUE"), *(len(r["queue"]) for r in rows))
    print(f"{'QUEUE':<{width}}  {'MESSAGES':>8}  BINDINGS (exchange/routing key)")
    for row in rows:
        bindings = ", ".join(f"{b['exchange'] or '(default)'}/{b['routing_key']}"
                             for b in row["bindings"])
        print(f"{row['queue']:<{width}}  {row['messages']:>8}  {bindings}")
    return 0


def purge(args: argparse.Namespace) -> int:
    conn = _connect(args)
    try:
        _require_queue(conn, args)
        channel = conn.channel()
        try:
            count = channel.queue_purge(args.queue) or 0
        finally:
            channel.close()
    finally:
        conn.release()
    plural = "" if count == 1 else "s"
    print(f"purged {count} message{plural} from queue {args.queue!r}")
    return 0


# -- consume ------------------------------------------------------------------

def _body_text(body: Any) -> tuple[str, str]:
    """(text, encoding): the body as UTF-8 text, or base64 when it is not text."""
    if isinstance(body, str):
        return body, "utf-8"
    try:
        return bytes(body).decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(bytes(body)).decode("ascii"), "base64"


#: Properties a virtual transport keeps for itself (shown elsewhere or meaningless).
_INTERNAL_PROPERTIES = frozenset({"delivery_info", "body_encoding", "delivery_tag"})


def _as_json(message: Any) -> str:
    text, encoding = _body_text(message.body)
    info = message.delivery_info or {}
    return json.dumps({
        "body": text, "body_encoding": encoding,
        "content_type": message.content_type, "content_encoding": message.content_encoding,
        "headers": message.headers,
        "properties": {key: value for key, value in (message.properties or {}).items()
                       if key not in _INTERNAL_PROPERTIES},
        "exchange": info.get("exchange"), "routing_key": info.get("routing_key"),
        "redelivered": bool(info.get("redelivered")),
    }, sort_keys=True, default=str)


def consume(args: argparse.Namespace) -> int:
    from kombu import Consumer, Queue

    if args.limit < 0 or args.wait <= 0:
        raise CliError("--limit must be 0 or more and --wait more than 0", code=2)
    conn = _connect(args)
    got = 0
    try:
        _require_queue(conn, args)
        channel = conn.channel()
        # With --ack one message at a time, so none is held beyond the limit;
        # with --no-ack up to the limit (all stay unacknowledged until the end).
        channel.basic_qos(0, 1 if args.ack else args.limit, False)
        consumer = Consumer(channel, queues=[Queue(args.queue, no_declare=True)],
                            auto_declare=False)
        done = False

        def on_message(message: Any) -> None:
            nonlocal got, done
            got += 1
            print(_as_json(message) if args.json else _body_text(message.body)[0], flush=True)
            if args.limit and got >= args.limit:
                done = True
                consumer.cancel()  # before the last ack: nothing more is delivered
            if args.ack:
                message.ack()

        consumer.on_message = on_message
        consumer.consume()
        while not done:
            try:
                conn.drain_events(timeout=args.wait)
            except socket.timeout:
                break
        channel.close()  # unacknowledged messages go back to the queue
    finally:
        conn.release()
    if args.limit and got < args.limit:
        print(f"kombu consume: received {got} of {args.limit} messages; none arrived for "
              f"{args.wait:g} s", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0
