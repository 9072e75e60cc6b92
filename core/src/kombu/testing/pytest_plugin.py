"""The conformance kit as a pytest plugin.

Enable it in the root ``conftest.py`` of the transport's tests::

    pytest_plugins = ["kombu.testing.pytest_plugin"]

(or ``pytest -p kombu.testing.pytest_plugin``).  It registers assertion
rewriting for the kit, so a failure shows the values compared, adds the
``--kombu-url`` option (the default ``transport_url``), and reports the
transport under test in the header.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite(
    "kombu.testing.fixtures",
    "kombu.testing.suite",
    "kombu.testing.transport_suite",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kombu", "kombu transport conformance kit")
    group.addoption("--kombu-url", dest="kombu_url", default=None, metavar="URL",
                    help="URL of the transport the kit tests (the transport_url fixture's "
                         "default).")
    group.addoption("--kombu-wait", dest="kombu_wait", default=None, type=float,
                    metavar="SECONDS",
                    help="Longest wait for a message that should arrive (default 10).")


def pytest_configure(config: pytest.Config) -> None:
    wait = config.getoption("kombu_wait", None)
    if wait is not None:
        if wait <= 0:
            raise pytest.UsageError(f"--kombu-wait must be a positive number of seconds, "
                                    f"not {wait}")
        from kombu.testing.fixtures import LIMITS

        LIMITS.wait = wait


def pytest_report_header(config: pytest.Config) -> str | None:
    url = config.getoption("kombu_url", None)
    if not url:
        return None
    from kombu.utils.url import maybe_sanitize_url

    return f"kombu conformance kit: {maybe_sanitize_url(url)}"


@pytest.fixture
def transport_url(request: pytest.FixtureRequest) -> str:
    """The transport under test: ``--kombu-url``, unless a test module defines its own."""
    url: str | None = request.config.getoption("kombu_url", None)
    if not url:
        raise pytest.UsageError(
            "kombu conformance kit: no transport to test. Define a transport_url fixture "
            "in the test module or a conftest, or pass --kombu-url=URL.")
    return url
