"""Every transport of the workspace runs kombu's conformance suite.

``transport_url`` is parametrized over the transports in tests/conftest.py,
so this module is the public suite (:mod:`kombu.testing.transport_suite`)
exactly as a third-party transport would run it.
"""

from kombu.testing.transport_suite import *  # noqa: F403
