"""Helpers shared by the project's tests (imported as ``helpers``)."""

from helpers.brokers import BROKERS, require, unavailable, under_ci
from helpers.names import unique_name
from helpers.processes import run, run_python, wait_until
from helpers.transports import TRANSPORTS, TransportCase, transport_params

__all__ = [
    "BROKERS",
    "TRANSPORTS",
    "TransportCase",
    "require",
    "run",
    "run_python",
    "transport_params",
    "unavailable",
    "under_ci",
    "unique_name",
    "wait_until",
]
