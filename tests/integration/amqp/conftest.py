"""Fixtures of the AMQP transport tests: a real RabbitMQ on 127.0.0.1:5672.

Every queue and exchange a test declares carries a unique name made by the
``names`` fixture and is deleted afterwards.  Tests that break connections
on purpose do it inside a virtual host of their own (``vhost`` fixture), so
that other users of the broker are not disturbed.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.faultproxy import FaultProxy

amqp = pytest.importorskip("amqp", reason="kombu-pyamqp needs the amqp library (pip install amqp)")

HOST, PORT = "127.0.0.1", 5672


@pytest.fixture
def raw(amqp_url: str) -> Iterator[Any]:
    """A plain ``amqp`` channel, for checks that bypass kombu."""
    conn = amqp.Connection(f"{HOST}:{PORT}", connect_timeout=5)
    conn.connect()
    yield conn.channel()
    if conn.connected:
        conn.close()


@pytest.fixture
def names(amqp_url: str) -> Iterator[Callable[[str], str]]:
    """Makes unique names; deletes the queues and exchanges named so afterwards."""
    made: list[str] = []

    def make(kind: str) -> str:
        name = f"kpa-{kind}-{uuid.uuid4().hex[:10]}"
        made.append(name)
        return name

    yield make
    conn = amqp.Connection(f"{HOST}:{PORT}", connect_timeout=5)
    conn.connect()
    try:
        for name in made:
            for delete in ("queue_delete", "exchange_delete"):
                channel = conn.channel()
                try:
                    getattr(channel, delete)(name)
                    channel.close()
                except amqp.exceptions.ChannelError:
                    pass  # the channel is closed by the broker's error
    finally:
        conn.close()


@pytest.fixture
def connect(amqp_url: str) -> Iterator[Callable[..., Any]]:
    """``connect(url=None, **kwargs)``: kombu Connections closed after the test."""
    from kombu import Connection

    made: list[Any] = []

    def make(url: str | None = None, **kwargs: Any) -> Any:
        conn = Connection(url or amqp_url, **kwargs)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


def _rabbitmqctl(*args: str, timeout: float = 30) -> str:
    """Run ``rabbitmqctl`` (skips the test when it is not installed or not allowed)."""
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        pytest.skip("rabbitmqctl is not installed")
    proc = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        if "eacces" in proc.stderr.lower() or "cookie" in proc.stderr.lower():
            pytest.skip(f"rabbitmqctl may not talk to the broker: {proc.stderr.strip()[-300:]}")
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


@pytest.fixture
def vhost(amqp_url: str) -> Iterator[str]:
    """A virtual host of the test's own (guest may use it), deleted afterwards."""
    name = f"kpa-vhost-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


@pytest.fixture
def bare_vhost(amqp_url: str) -> Iterator[str]:
    """A virtual host of the test's own that nobody may use yet, deleted afterwards."""
    name = f"kpa-vhost-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", name)
    try:
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


@pytest.fixture
def rabbitmqctl(amqp_url: str) -> Callable[..., str]:
    """``rabbitmqctl(*args)``: run rabbitmqctl, return its output."""
    return _rabbitmqctl


@pytest.fixture
def fault_proxy(amqp_url: str) -> Iterator[Callable[[], Any]]:
    """``fault_proxy()``: a started FaultProxy in front of RabbitMQ, stopped afterwards."""
    made: list[Any] = []

    def make() -> Any:
        proxy = FaultProxy((HOST, PORT)).start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()
