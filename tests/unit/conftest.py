"""Fixtures shared by the unit tests: an in-process broker, no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection
from kombu.transport.protocols import ChannelProtocol


@pytest.fixture
def conn() -> Iterator[Connection]:
    """A ``memory://`` connection, closed after the test."""
    with Connection("memory://") as connection:
        yield connection


@pytest.fixture
def channel(conn: Connection) -> ChannelProtocol:
    """The default channel of :func:`conn`."""
    return conn.default_channel
