"""The ``kombu`` command: inspect transports and talk to a broker from a shell.

Nothing in the library imports this package, so ``import kombu`` does not
pay for it.  :func:`main` is the console-script entry point.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from kombu.cli.common import MaskedStream, url_password
from kombu.cli.errors import EXIT_CODES, EXIT_ERROR, EXIT_INTERRUPTED, classify, one_line

__all__ = ["build_parser", "main"]

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
    from kombu.cli import bench, check, messages, transports

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
    transports.add_parser(sub)
    check.add_parser(sub)
    messages.add_parsers(sub, common)
    bench.add_parser(sub, common)
    return parser


def _secrets(argv: Sequence[str]) -> list[str]:
    found = []
    for arg in argv:
        if "://" in arg:
            password = url_password(arg)
            if password:
                found.append(password)
    return found


def _where(url: str | None) -> str:
    """``host:port`` of ``url`` for error messages, or '' when it has none."""
    from kombu.utils.url import url_to_parts

    if not url or "://" not in url:
        return ""
    try:
        parts = url_to_parts(url)
    except ValueError:
        return ""
    if not parts.hostname:
        return ""
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kombu`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    secrets = _secrets(args_list)
    out, err = sys.stdout, sys.stderr
    if secrets:
        sys.stdout = MaskedStream(out, secrets)  # type: ignore[assignment]
        sys.stderr = MaskedStream(err, secrets)  # type: ignore[assignment]
    try:
        return _run(args_list)
    finally:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        sys.stdout, sys.stderr = out, err


def _run(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "timeout", 1) <= 0:
        parser.error("--timeout must be more than 0")
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - every error becomes one line and an exit code
        if args.traceback:
            traceback.print_exc()
        code, category = classify(exc)
        reason = one_line(str(exc)) or type(exc).__name__
        prefix = f"{category}: " if category else ""
        where = _where(getattr(args, "url", None))
        if category and where and where not in reason:
            reason = f"{where}: {reason}"
        print(f"{PROG} {args.command}: error: {prefix}{reason}", file=sys.stderr)
        return code
