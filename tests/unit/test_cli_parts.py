"""Pieces of the ``kombu`` command that need no broker (end to end: tests/integration)."""

from __future__ import annotations

import io
import socket
import ssl

import pytest
from kombu.cli.bench import percentile
from kombu.cli.common import MaskedStream, url_password
from kombu.cli.errors import CliError, classify, one_line
from kombu.exceptions import AccessRefused, OperationalError, UnknownTransport


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0.5, 0.9, 0.99, 1.0)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([3.0], 0.5) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 0.5) == 4.0  # ceil(3.5)


def _raised_from(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except Exception as exc:  # noqa: BLE001
        return exc


@pytest.mark.parametrize(("exc", "code", "category"), [
    (ConnectionRefusedError(111, "Connection refused"), 4, "connection refused"),
    (_raised_from(OperationalError("Error 111 connecting"), ConnectionRefusedError()), 4,
     "connection refused"),
    (socket.gaierror(-2, "Name or service not known"), 4, "host not found"),
    (socket.timeout("timed out"), 5, "timed out"),
    (AccessRefused("refused the login of user 'x'"), 6, "wrong credentials"),
    (AccessRefused("The virtual host 'v' does not exist on the broker"), 7,
     "unknown virtual host"),
    (AccessRefused("does not allow user 'x' into the virtual host 'v'"), 7,
     "virtual host forbidden"),
    (_raised_from(OSError("handshake"), ssl.SSLCertVerificationError("verify failed")), 8,
     "certificate rejected"),
    (UnknownTransport("No such transport: 'x'"), 3, "transport"),
    (CliError("no queue", code=10), 10, ""),
    (RuntimeError("something else"), 1, ""),
])
def test_classify(exc: BaseException, code: int, category: str) -> None:
    assert classify(exc) == (code, category)


def test_one_line() -> None:
    assert one_line("a\n  b\tc\n") == "a b c"
    assert len(one_line("x" * 1000)) == 600


def test_masked_stream_hides_plain_and_encoded_passwords() -> None:
    password = url_password("amqp://user:p%40ss@host//")
    assert password == "p@ss"
    out = io.StringIO()
    stream = MaskedStream(out, [password])
    stream.write("login p@ss failed; url amqp://user:p%40ss@host// ok\n")
    assert out.getvalue() == "login ** failed; url amqp://user:**@host// ok\n"
    assert url_password("redis://127.0.0.1:6379/0") is None
