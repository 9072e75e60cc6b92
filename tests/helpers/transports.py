"""The transports the parametrized suite (``transport_url``) runs against.

To add a transport, add one line to :data:`TRANSPORTS`: its test id, its
URL, the broker it needs (a key of :data:`helpers.brokers.BROKERS`, or
None) and what it declares to the conformance kit
(:class:`kombu.testing.Requirements`).  Broker-backed cases get that
broker's marker, so they are skipped (or, under CI, failed) when the broker
is absent, and can be deselected with ``-m 'not redis'``.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from kombu.testing import Requirements


class TransportCase(NamedTuple):
    id: str
    url: str
    broker: str | None = None
    #: What the transport declares to the conformance kit.
    requirements: Requirements = Requirements()


_IN_PROCESS = "the store lives in the process (connections of other processes do not see it)"

TRANSPORTS: list[TransportCase] = [
    TransportCase("memory", "memory://", requirements=Requirements.lacking(
        multiprocess=_IN_PROCESS,
        ttl="kombu's virtual transports ignore per-message expiration")),
    TransportCase("pyamqp", "amqp://guest:guest@127.0.0.1:5672//", "rabbitmq",
                  Requirements().with_("ttl")),
    # kombu's Redis transport serves lower priority numbers first; kept for
    # wire compatibility.
    TransportCase("redis", "redis://127.0.0.1:6379/10", "redis",
                  Requirements(priority_order="asc").without(
                      headers_exchange="kombu's Redis transport has no headers exchange",
                      requeue_at_head="kombu's Redis transport requeues at the tail "
                                      "(LPUSH), and kombu-redis does as kombu 5.x does",
                      ttl="kombu's Redis transport ignores per-message expiration")),
    # Redis Cluster: the URL is the session's cluster (tests/conftest.py starts it).
    TransportCase("rediscluster", "rediscluster://session-cluster", "rediscluster",
                  Requirements(priority_order="asc").without(
                      headers_exchange="kombu's Redis transport has no headers exchange",
                      requeue_at_head="requeues at the tail (LPUSH), as kombu's Redis transport",
                      ttl="kombu's Redis transport ignores per-message expiration")),
    # The example third-party distribution, installed like any other.
    TransportCase("dictq", "dictq://", requirements=Requirements.lacking(
        multiprocess=_IN_PROCESS,
        priorities="one FIFO deque per queue",
        ttl="kombu's virtual transports ignore per-message expiration")),
]


#: The URL of the Redis Cluster case, replaced by the running cluster's.
CLUSTER_PLACEHOLDER = "rediscluster://session-cluster"


def requirements_for(url: str) -> Requirements:
    """What the transport at ``url`` declares to the conformance kit."""
    if url.startswith("rediscluster://"):
        url = CLUSTER_PLACEHOLDER
    for case in TRANSPORTS:
        if case.url == url:
            return case.requirements
    return Requirements()


def transport_params() -> list[object]:
    """:data:`TRANSPORTS` as ``pytest.param`` objects, with broker markers."""
    return [
        pytest.param(case.url, id=case.id,
                     marks=[getattr(pytest.mark, case.broker)] if case.broker else [])
        for case in TRANSPORTS
    ]
