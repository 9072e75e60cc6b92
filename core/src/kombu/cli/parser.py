"""The argument parser of the ``kombu`` command.

Only argparse is imported here: each command's module (and the broker
clients it needs) is imported once that command is chosen, so ``--help``
and ``--version`` answer fast.  A subcommand's ``func`` default is the
``'module:function'`` that runs it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kombu.cli.errors import EXIT_CODES

__all__ = ["PROG", "add_url_options", "build_parser"]

PROG = "kombu"


def _epilog() -> str:
    lines = ["exit codes:"]
    lines += [f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()]
    lines += ["", "Every error is one line on standard error (--traceback adds the traceback).",
              "Passwords in URLs are never printed. 'kombu COMMAND --help' describes a command."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kombu`` command and its subcommands."""
    from kombu import __version__

    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                       help="longest wait for the broker to answer: connecting, each "
                            "request (default 5)")
    group.add_argument("--traceback", action="store_true",
                       help="print the traceback of an error, not just its one-line reason")
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Inspect installed kombu transports and talk to a broker.",
        epilog=_epilog())
    parser.add_argument("--version", action="version", version=f"kombu-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Subcommands share the epilog, so each --help shows the exit codes too.
    original = sub.add_parser

    def add_parser(name: str, **kwargs: object) -> argparse.ArgumentParser:
        kwargs.setdefault("epilog", _epilog())
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("parents", [common])
        return original(name, **kwargs)  # type: ignore[arg-type]

    sub.add_parser = add_parser  # type: ignore[method-assign]
    add_transports_parser(sub)
    add_check_parser(sub)
    add_messages_parsers(sub, common)
    add_bench_parser(sub, common)
    return parser


def add_transports_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "transports", help="list the installed transports and whether they load",
        description="List every transport this environment can use: registered by plugins "
                    "(the kombu.transports entry-point group) or by kombu.transport."
                    "TRANSPORT_ALIASES. For each: its name, aliases, URL schemes, the "
                    "distribution and version that provide it, the transport API it targets "
                    "and whether its class loads. A plugin that fails is listed with its "
                    "error, and the exit status is then 1.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-load", dest="load", action="store_false",
                        help="do not import the transport classes (no broker client is imported)")
    parser.set_defaults(func="kombu.cli.transports:run")


def add_check_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "check", help="connect to a broker and report what answers",
        description="Connect to URL once (no retries), with every wait bounded by --timeout, "
                    "and report the transport, the server, the round-trip latency, the heartbeat "
                    "and TLS. Exits non-zero with a one-line reason when the broker cannot be "
                    "used (see the exit codes of 'kombu --help'). The password is never printed.")
    parser.add_argument("url", metavar="URL", help="broker URL, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--heartbeat", type=float, default=0, metavar="SECONDS",
                        help="heartbeat to request (AMQP; default 0: none requested)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func="kombu.cli.check:run")


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key, value


def add_url_options(parser: argparse.ArgumentParser) -> None:
    """The transport-option flag every command that connects takes."""
    parser.add_argument("-o", "--transport-option", dest="options", type=_option, action="append",
                        default=[], metavar="KEY=VALUE",
                        help="a transport option (VALUE read as JSON if it parses), e.g. "
                             "-o global_keyprefix=app: ; repeatable")


def add_messages_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "publish", parents=[common], help="publish a message",
        description="Publish BODY (or standard input when BODY is '-') to an exchange. "
                    "With --queue the queue is declared (durable) and bound to the exchange "
                    "first, and the routing key defaults to the queue name. A named exchange "
                    "is declared with --exchange-type (AMQP refuses a type that differs from "
                    "an existing exchange's). AMQP publishes are confirmed by the broker.")
    p.add_argument("url", metavar="URL")
    p.add_argument("body", metavar="BODY", help="message body; '-' reads standard input")
    p.add_argument("--exchange", default="", help="exchange name (default: the default exchange)")
    p.add_argument("--exchange-type", default="direct",
                   choices=("direct", "topic", "fanout", "headers"), help="default: direct")
    p.add_argument("--routing-key", default=None, help="default: the --queue name, else empty")
    p.add_argument("--queue", default=None, help="declare this queue and bind it to the exchange")
    p.add_argument("--content-type", default="text/plain",
                   help="content type of BODY (default text/plain; application/json is checked)")
    p.add_argument("--header", dest="headers", type=_header, action="append", default=[],
                   metavar="NAME=VALUE", help="message header; repeatable")
    p.add_argument("--priority", type=int, default=None, help="message priority")
    p.add_argument("--transient", action="store_true",
                   help="non-persistent delivery mode (default: persistent)")
    p.add_argument("--count", type=int, default=1, metavar="N", help="publish BODY N times")
    add_url_options(p)
    p.set_defaults(func="kombu.cli.messages:publish")

    p = sub.add_parser(
        "consume", parents=[common], help="receive messages from a queue",
        description="Receive up to --limit messages from QUEUE and print their bodies (one per "
                    "line; --json prints each with its properties). The queue must exist. With "
                    "--ack (the default) each message printed is acknowledged, so it leaves the "
                    "queue; with --no-ack none is, and all go back to the queue (marked "
                    "redelivered) when the command ends. Exits 11 when fewer than --limit "
                    "arrive, waiting at most --wait seconds for each.")
    p.add_argument("url", metavar="URL")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--limit", type=int, default=1, metavar="N",
                   help="stop after N messages (default 1; 0: until none arrives for --wait)")
    ack = p.add_mutually_exclusive_group()
    ack.add_argument("--ack", dest="ack", action="store_true", default=True,
                     help="acknowledge the messages received (default)")
    ack.add_argument("--no-ack", dest="ack", action="store_false",
                     help="leave the messages in the queue")
    p.add_argument("--wait", type=float, default=5.0, metavar="SECONDS",
                   help="longest wait for the next message (default 5)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per message: body, properties, headers, delivery info")
    add_url_options(p)
    p.set_defaults(func="kombu.cli.messages:consume")

    p = sub.add_parser("purge", parents=[common], help="delete every message in a queue",
                       description="Delete every ready message of QUEUE and print how many "
                                   "were removed. The queue must exist.")
    p.add_argument("url", metavar="URL")
    p.add_argument("queue", metavar="QUEUE")
    add_url_options(p)
    p.set_defaults(func="kombu.cli.messages:purge")

    p = sub.add_parser(
        "queues", parents=[common], help="list queues (where the transport can)",
        description="List the queues of the broker with their message counts and bindings. "
                    "Redis: read from kombu's binding tables, so a queue is listed once a "
                    "kombu client has bound it. AMQP 0-9-1 has no command to list queues: use "
                    "the RabbitMQ management API or 'rabbitmqctl list_queues' (exit 9). "
                    "In-process transports (memory) have nothing to list from another process.")
    p.add_argument("url", metavar="URL")
    p.add_argument("--pattern", default="*", help="only queues whose name matches this glob")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_url_options(p)
    p.set_defaults(func="kombu.cli.messages:queues")


def add_bench_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bench", parents=[common], help="measure publish and consume rates and latency",
        description="Declare a queue of its own, publish N messages from one connection while "
                    "another consumes and acknowledges them, then delete the queue and print "
                    "the publish, consume and end-to-end rates and the latency (publish to "
                    "delivery) percentiles p50, p90, p99. A terminal shows live progress on "
                    "standard error.")
    p.add_argument("url", metavar="URL")
    p.add_argument("-n", "--messages", type=int, default=1000, metavar="N",
                   help="messages to send (default 1000)")
    p.add_argument("--size", type=int, default=100, metavar="BYTES",
                   help="body size in bytes (default 100, at least 8)")
    p.add_argument("--prefetch", type=int, default=100, help="consumer prefetch count (default 100)")
    p.add_argument("--queue", default=None,
                   help="name of the bench queue (default: kombu-bench-<random>); it must not "
                        "exist, and is deleted at the end")
    p.add_argument("--persistent", action="store_true", help="persistent messages (default transient)")
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="longest wait for the next message before giving up (default 10)")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show progress even when standard error is not a terminal")
    progress.add_argument("--no-progress", dest="progress", action="store_false",
                          help="never show progress")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_url_options(p)
    p.set_defaults(func="kombu.cli.bench:run")
