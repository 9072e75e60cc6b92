"""The ``kombu`` command: inspect transports and talk to a broker from a shell.

Nothing in the library imports this package, so ``import kombu`` does not
pay for it.  :func:`main` is the console-script entry point.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    import argparse

from kombu.cli.common import MaskedStream, url_password
from kombu.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, classify, one_line
from kombu.cli.parser import PROG, build_parser

__all__ = ["build_parser", "main"]


def _secrets(argv: Sequence[str]) -> list[str]:
    found = []
    for arg in argv:
        if "://" in arg:
            password = url_password(arg)
            if password:
                found.append(password)
    return found


def _command(path: str) -> Callable[[argparse.Namespace], int]:
    """The function a ``'module:function'`` path names (imported now)."""
    from importlib import import_module

    module, _, name = path.partition(":")
    func: Callable[[argparse.Namespace], int] = getattr(import_module(module), name)
    return func


def _json_failure(url: str, code: int, category: str, reason: str) -> None:
    """``check --json``: the failure as a JSON object on standard output too."""
    import json

    from kombu.cli.common import display_url

    print(json.dumps({"ok": False, "url": display_url(url), "exit_code": code,
                      "category": category, "error": reason}, sort_keys=True))


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
        sys.stdout = MaskedStream(out, secrets)
        sys.stderr = MaskedStream(err, secrets)
    import warnings

    formatwarning = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        return _run(args_list)
    finally:
        warnings.formatwarning = formatwarning
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        sys.stdout, sys.stderr = out, err


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    return f"{PROG}: warning: {one_line(str(message))}\n"


def _run(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "timeout", 1) <= 0:
        parser.error("--timeout must be more than 0")
    try:
        code: int = _command(args.func)(args)
        return code
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - every error becomes one line and an exit code
        if args.traceback:
            import traceback

            traceback.print_exc()
        code, category = classify(exc)
        reason = one_line(str(exc)) or type(exc).__name__
        prefix = f"{category}: " if category else ""
        where = _where(getattr(args, "url", None))
        if category and where and where not in reason:
            reason = f"{where}: {reason}"
        print(f"{PROG} {args.command}: error: {prefix}{reason}", file=sys.stderr)
        if args.command == "check" and getattr(args, "json", False):
            _json_failure(args.url, code, category, reason)
        return code
