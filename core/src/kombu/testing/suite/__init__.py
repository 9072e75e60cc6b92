"""The conformance kit's tests: ``from kombu.testing.suite import *`` in a test module.

The module then needs a ``transport_url`` (a fixture, or ``--kombu-url``)
and may override ``transport_requirements`` (a
:class:`~kombu.testing.Requirements`) and ``transport_unreachable_url``.
Load :mod:`kombu.testing.pytest_plugin` first (``pytest_plugins`` in the
root conftest) so that failures show the values compared.
"""

from kombu.testing.fixtures import (
    _kit_cleanup,
    kombu_connection,
    transport_requirements,
    transport_unreachable_url,
)
from kombu.testing.suite.basics import TestTransportBasics, TestTransportSimple
from kombu.testing.suite.bodies import TestTransportBodies
from kombu.testing.suite.concurrency import TestTransportConcurrency
from kombu.testing.suite.delivery import TestTransportDelivery
from kombu.testing.suite.routing import TestTransportRouting

__all__ = (
    "TestTransportBasics",
    "TestTransportBodies",
    "TestTransportConcurrency",
    "TestTransportDelivery",
    "TestTransportRouting",
    "TestTransportSimple",
    "_kit_cleanup",
    "kombu_connection",
    "transport_requirements",
    "transport_unreachable_url",
)
