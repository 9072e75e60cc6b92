"""Exit codes of the ``kombu`` command and the one-line reason for a failure."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "EXIT_CODES",
    "CliError",
    "classify",
    "one_line",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TRANSPORT = 3
EXIT_REFUSED = 4
EXIT_TIMEOUT = 5
EXIT_AUTH = 6
EXIT_VHOST = 7
EXIT_TLS = 8
EXIT_UNSUPPORTED = 9
EXIT_NOT_FOUND = 10
EXIT_INCOMPLETE = 11
EXIT_INTERRUPTED = 130

#: Every exit code with what it means (shown by ``--help`` and in docs/cli.md).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "any other error (the broker failed an operation, a plugin failed to load)",
    EXIT_USAGE: "bad arguments or a malformed URL",
    EXIT_TRANSPORT: "unknown transport, or its plugin is not installed or does not load",
    EXIT_REFUSED: "connection refused or reset, or the host name does not resolve",
    EXIT_TIMEOUT: "the broker did not answer within --timeout",
    EXIT_AUTH: "the broker refused the credentials",
    EXIT_VHOST: "unknown or forbidden virtual host (Redis: no such database)",
    EXIT_TLS: "TLS failed: certificate rejected or handshake error",
    EXIT_UNSUPPORTED: "the transport cannot do this (e.g. list queues over AMQP)",
    EXIT_NOT_FOUND: "no such queue",
    EXIT_INCOMPLETE: "consume, bench: fewer messages than expected arrived within --wait",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


class CliError(Exception):
    """A failure the command reports as one line and exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: str, limit: int = 600) -> str:
    """``text`` on a single line (whitespace runs collapsed), at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling (no cycles)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


_RESET = "connection reset (if this is a TLS port, use rediss:// or amqps://)"


def classify(exc: BaseException) -> tuple[int, str]:
    """The exit code and a short category for ``exc`` (e.g. ``(6, 'wrong credentials')``)."""
    import socket
    import ssl

    from kombu.exceptions import AccessRefused, TransportError

    chain = list(_chain(exc))
    for err in chain:
        names = _names(err)
        if isinstance(err, CliError):
            return err.code, ""
        if isinstance(err, TransportError):
            return EXIT_TRANSPORT, "transport"
        if "InvalidDatabase" in names:
            return EXIT_VHOST, "unknown database"
        if "TLSVerificationError" in names or isinstance(err, ssl.SSLCertVerificationError):
            return EXIT_TLS, "certificate rejected"
        if isinstance(err, AccessRefused):
            text = str(err)
            if "virtual host" in text:
                return EXIT_VHOST, ("unknown virtual host" if "does not exist" in text
                                    else "virtual host forbidden")
            return EXIT_AUTH, "wrong credentials"
    for err in chain:
        names = _names(err)
        if isinstance(err, ssl.SSLError):
            return EXIT_TLS, "TLS handshake failed"
        if isinstance(err, (socket.timeout, TimeoutError)) or "TimeoutError" in names:
            return EXIT_TIMEOUT, "timed out"
        if isinstance(err, ConnectionRefusedError):
            return EXIT_REFUSED, "connection refused"
        if isinstance(err, socket.gaierror):
            return EXIT_REFUSED, "host not found"
        if isinstance(err, ConnectionResetError):
            return EXIT_REFUSED, _RESET
    text = " ".join(str(err) for err in chain)
    if "Connection refused" in text or "Error 111 " in text:
        return EXIT_REFUSED, "connection refused"
    if "Connection reset by peer" in text:
        return EXIT_REFUSED, _RESET
    if "timed out" in text.lower() or "Timeout" in text:
        return EXIT_TIMEOUT, "timed out"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return EXIT_REFUSED, "host not found"
    if isinstance(exc, ValueError) and "URL" in str(exc):
        return EXIT_USAGE, "bad URL"
    return EXIT_ERROR, ""
