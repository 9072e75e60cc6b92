"""The transports the parametrized suite (``transport_url``) runs against.

To add a transport, add one line to :data:`TRANSPORTS`: its test id, its
URL and the broker it needs (a key of :data:`helpers.brokers.BROKERS`, or
None).  Broker-backed cases get that broker's marker, so they are skipped
(or, under CI, failed) when the broker is absent, and can be deselected
with ``-m 'not redis'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import pytest


class TransportCase(NamedTuple):
    id: str
    url: str
    broker: str | None = None
    #: Overrides of kombu.testing.transport_suite.DEFAULT_CAPABILITIES.
    capabilities: Mapping[str, Any] = MappingProxyType({})


TRANSPORTS: list[TransportCase] = [
    TransportCase("memory", "memory://"),
    TransportCase("pyamqp", "amqp://guest:guest@127.0.0.1:5672//", "rabbitmq"),
    # kombu's Redis transport serves lower priority numbers first; kept for
    # wire compatibility.
    TransportCase("redis", "redis://127.0.0.1:6379/11", "redis",
                  MappingProxyType({"priority_order": "asc"})),
]


def capabilities_for(url: str) -> dict[str, Any]:
    """The suite capability overrides of the transport at ``url``."""
    for case in TRANSPORTS:
        if case.url == url:
            return dict(case.capabilities)
    return {}


def transport_params() -> list[object]:
    """:data:`TRANSPORTS` as ``pytest.param`` objects, with broker markers."""
    return [
        pytest.param(case.url, id=case.id,
                     marks=[getattr(pytest.mark, case.broker)] if case.broker else [])
        for case in TRANSPORTS
    ]
