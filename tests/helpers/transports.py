"""The transports the parametrized suite (``transport_url``) runs against.

To add a transport, add one line to :data:`TRANSPORTS`: its test id, its
URL and the broker it needs (a key of :data:`helpers.brokers.BROKERS`, or
None).  Broker-backed cases get that broker's marker, so they are skipped
(or, under CI, failed) when the broker is absent, and can be deselected
with ``-m 'not redis'``.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest


class TransportCase(NamedTuple):
    id: str
    url: str
    broker: str | None = None


TRANSPORTS: list[TransportCase] = [
    TransportCase("memory", "memory://"),
    TransportCase("pyamqp", "amqp://guest:guest@127.0.0.1:5672//", "rabbitmq"),
]


def transport_params() -> list[object]:
    """:data:`TRANSPORTS` as ``pytest.param`` objects, with broker markers."""
    return [
        pytest.param(case.url, id=case.id,
                     marks=[getattr(pytest.mark, case.broker)] if case.broker else [])
        for case in TRANSPORTS
    ]
