"""A password in a broker URL never shows: not in errors, reprs, URIs or logs.

Each case fails for real (a refused port, wrong credentials on the real
broker) with kombu's connection debug log on, then every string the user
could see is searched for the password.
"""

from __future__ import annotations

import logging
import traceback

import pytest
from helpers.redis_server import RedisServer
from helpers.sockets import free_port
from kombu import Connection

SECRET = "pa55-w0rd-that-must-not-leak"




def _visible(conn: Connection, exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """Everything a user could see of ``conn`` and its failure."""
    return "\n".join([
        repr(conn), str(conn), conn.as_uri(), repr(exc), str(exc),
        "".join(traceback.format_exception(exc)),
        *(record.getMessage() for record in caplog.records),
        caplog.text,
    ])


def _fail(conn: Connection, caplog: pytest.LogCaptureFixture) -> BaseException:
    conn._logger = True  # kombu's connection debug log (KOMBU_LOG_CONNECTION)
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(Exception) as info:
            conn.ensure_connection(errback=lambda exc, interval: errors.append(exc),
                                   max_retries=1, interval_start=0.01, timeout=10)
        for exc in errors:
            logging.getLogger("test").warning("retrying after %r", exc)
    conn.release()
    return info.value


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_refused_connection_does_not_show_the_password(
        scheme: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip({"redis": "kombu_redis", "amqp": "kombu_pyamqp"}[scheme])
    port = free_port()
    conn = Connection(f"{scheme}://user:{SECRET}@127.0.0.1:{port}/0;"
                      f"{scheme}://user:{SECRET}@127.0.0.1:{port}/1")
    exc = _fail(conn, caplog)
    seen = _visible(conn, exc, caplog)
    assert f"127.0.0.1:{port}" in seen  # the error says where
    assert SECRET not in seen


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_wrong_password_does_not_show_it(scheme: str, caplog: pytest.LogCaptureFixture,
                                         request: pytest.FixtureRequest) -> None:
    from kombu.exceptions import AccessRefused

    server: RedisServer | None = None
    if scheme == "redis":
        # the shared Redis has no password: an extra one with a password
        pytest.importorskip("kombu_redis")
        server = RedisServer("--requirepass", "right")
        url = f"redis://:{SECRET}@127.0.0.1:{server.port}/0"
    else:
        pytest.importorskip("kombu_pyamqp")
        request.getfixturevalue("amqp_url")  # skips (or fails under CI) without RabbitMQ
        url = f"amqp://guest:{SECRET}@127.0.0.1:5672//"
    try:
        conn = Connection(url)
        exc = _fail(conn, caplog)
    finally:
        if server is not None:
            server.stop()
    assert isinstance(exc, AccessRefused)
    seen = _visible(conn, exc, caplog)
    assert SECRET not in seen
