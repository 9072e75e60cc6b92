"""Is a local broker there?  Bounded probes that need no client library.

Redis is asked ``PING`` over a raw socket; RabbitMQ is sent the AMQP 0-9-1
protocol header and must answer with a frame (``Connection.Start``) or a
protocol header of its own.  Each broker is probed once per process.

Run as a script (``python tests/helpers/brokers.py redis``) it exits 0 when
the broker answers and 1 otherwise; the ``dev`` script uses that.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from dataclasses import dataclass

#: Seconds allowed for one probe's connect and for each read.
PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Broker:
    """A broker the tests may use, and how a developer starts it."""

    name: str
    host: str
    port: int
    start_hint: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


REDIS = Broker(
    "Redis", "127.0.0.1", 6379,
    "start it with `./dev test` (which starts an installed redis-server) or "
    "`redis-server --port 6379 --bind 127.0.0.1 --daemonize yes`",
)
RABBITMQ = Broker(
    "RabbitMQ", "127.0.0.1", 5672,
    "start it with `./dev test` (which starts an installed rabbitmq-server) or "
    "`rabbitmq-server -detached`; the tests log in as guest/guest",
)

#: Marker name -> broker.
BROKERS: dict[str, Broker] = {"redis": REDIS, "rabbitmq": RABBITMQ}

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def _recv_some(sock: socket.socket, want: int) -> bytes:
    data = b""
    while len(data) < want:
        chunk = sock.recv(want - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe_redis(host: str = REDIS.host, port: int = REDIS.port,
                timeout: float = PROBE_TIMEOUT) -> str | None:
    """None if a Redis at ``host:port`` answers PING, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = _recv_some(sock, 7)
    except OSError as exc:
        return f"cannot connect ({exc})"
    if reply == b"+PONG\r\n":
        return None
    return f"unexpected reply to PING: {reply!r}"


def probe_amqp(host: str = RABBITMQ.host, port: int = RABBITMQ.port,
               timeout: float = PROBE_TIMEOUT) -> str | None:
    """None if an AMQP 0-9-1 broker at ``host:port`` answers, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(AMQP_HEADER)
            reply = _recv_some(sock, 8)
    except OSError as exc:
        return f"cannot connect ({exc})"
    # A frame of type 1 (method) on channel 0 is Connection.Start; a broker
    # that speaks another version answers with its own protocol header.
    if reply[:3] == b"\x01\x00\x00" or reply.startswith(b"AMQP"):
        return None
    return f"unexpected reply to the AMQP protocol header: {reply!r}"


_PROBES = {"redis": probe_redis, "rabbitmq": probe_amqp}


@functools.cache
def unavailable(name: str) -> str | None:
    """None if broker ``name`` ('redis' or 'rabbitmq') is up; else a message.

    The message says which broker at which address is missing and how to
    start it.  The answer is cached for the life of the process.
    """
    broker = BROKERS[name]
    reason = _PROBES[name](broker.host, broker.port)
    if reason is None:
        return None
    return (f"{broker.name} is not available at {broker.address}: {reason}; "
            f"{broker.start_hint}")


def under_ci() -> bool:
    """True when running under CI (``CI=true``), where absent brokers fail."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(name: str) -> None:
    """Skip the calling test if broker ``name`` is absent; fail it under CI."""
    message = unavailable(name)
    if message is None:
        return
    import pytest

    if under_ci():
        pytest.fail(f"{message} (required under CI=true)", pytrace=False)
    pytest.skip(message)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in _PROBES:
        print(f"usage: brokers.py {{{'|'.join(_PROBES)}}}", file=sys.stderr)
        return 2
    message = unavailable(argv[0])
    if message is not None:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
