"""What the commands share: masked output, bounded connections, a watchdog."""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from kombu.cli.errors import EXIT_TIMEOUT, CliError

if TYPE_CHECKING:  # pragma: no cover
    from kombu.connection import Connection

__all__ = ["MaskedStream", "deadline", "display_url", "open_connection", "url_password"]


class MaskedStream(io.TextIOBase):
    """A text stream that writes to ``stream`` with every secret replaced by ``**``."""

    def __init__(self, stream: TextIO, secrets: list[str]) -> None:
        super().__init__()
        self.stream = stream
        self.secrets = [s for s in secrets if s]

    def write(self, text: str) -> int:
        from kombu.utils.url import mask_password

        masked = text
        for secret in self.secrets:
            masked = mask_password(masked, secret)
        self.stream.write(masked)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def url_password(url: str) -> str | None:
    """The password of ``url`` as written and decoded, or None (malformed URLs: None)."""
    from kombu.utils.url import url_to_parts

    try:
        password = url_to_parts(url).password
    except ValueError:
        return None
    return password or None


def display_url(url: str) -> str:
    """``url`` safe to print: the password masked, the query kept off."""
    from kombu.utils.url import maybe_sanitize_url

    text: str = maybe_sanitize_url(url)
    return text


def _exit_now(message: str, code: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    finally:
        os._exit(code)


@contextmanager
def deadline(seconds: float, what: str, prog: str = "kombu") -> Iterator[None]:
    """Exit the process with EXIT_TIMEOUT if the block takes longer than ``seconds``.

    The transports' own socket timeouts normally fire first; this is the
    bound when one of them does not (a driver waiting without a timeout).
    """
    import threading

    timer = threading.Timer(seconds, _exit_now, (
        f"{prog}: error: timed out: no answer {what} within {seconds:g} s "
        "(raise --timeout if the broker is slow)", EXIT_TIMEOUT))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _bounded_options(driver_type: str, timeout: float) -> dict[str, Any]:
    """Transport options that bound every socket wait of a driver by ``timeout``."""
    if driver_type == "redis":
        return {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                "retry_on_timeout": False}
    if driver_type == "amqp":
        return {"read_timeout": timeout, "write_timeout": timeout}
    return {}


def open_connection(url: str, timeout: float, heartbeat: float = 0,
                    transport_options: dict[str, Any] | None = None,
                    confirm: bool = False) -> Connection:
    """A connected :class:`~kombu.Connection` to ``url`` whose waits are bounded.

    With ``confirm`` an AMQP broker confirms every publish.  Raises the
    transport's own error (classified by the caller) when it cannot
    connect; never retries.
    """
    from kombu.connection import Connection

    if "://" not in url:
        raise CliError(f"{url!r} is not a broker URL: write it as transport://host:port/vhost "
                       "(e.g. redis://127.0.0.1:6379/0 or amqp://user:password@host:5672//)",
                       code=2)
    conn = Connection(url, connect_timeout=timeout, heartbeat=heartbeat)
    driver = getattr(conn.transport, "driver_type", "")
    options = {**_bounded_options(driver, timeout), **(transport_options or {})}
    if confirm and driver == "amqp":
        options["confirm_publish"] = True
    conn.transport_options.update(options)
    with deadline(timeout + 2, f"from {display_url(url)} while connecting"):
        start = time.perf_counter()
        conn.connect()
        conn.cli_connect_ms = elapsed_ms(start)  # type: ignore[attr-defined]
    return conn


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a :func:`time.perf_counter` value)."""
    return (time.perf_counter() - start) * 1000.0
