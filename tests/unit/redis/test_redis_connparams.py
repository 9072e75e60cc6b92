"""redis-py connection parameters and connect errors of kombu-redis (no broker).

The channel is given as what connparams reads of it: its options and its
transport's client (a kombu Connection that is never connected).
"""

from __future__ import annotations

import ssl
from types import SimpleNamespace
from typing import Any

import pytest

redis = pytest.importorskip("redis", reason="kombu-redis needs redis-py (pip install redis)")

from kombu import Connection  # noqa: E402
from kombu.exceptions import AccessRefused  # noqa: E402
from kombu_redis.connparams import (  # noqa: E402
    InvalidDatabase,
    TLSVerificationError,
    connect_error,
    connparams,
    prepare_virtual_host,
)
from kombu_redis.options import ChannelOptions  # noqa: E402


def _channel(url: str, **kwargs: Any) -> Any:
    """What connparams needs of a channel on ``url``, with ChannelOptions' defaults."""
    options = kwargs.pop("options", {})
    client = Connection(url, **kwargs)
    transport = SimpleNamespace(client=client, default_port=6379)
    fields = {name: getattr(ChannelOptions, name) for name in dir(ChannelOptions)
              if not name.startswith("_")}
    return SimpleNamespace(connection=transport, **{**fields, **options})


def test_host_port_credentials_and_database() -> None:
    params = connparams(_channel("redis://alice:pw@example.test:6390/4"))
    assert (params["host"], params["port"], params["db"]) == ("example.test", 6390, 4)
    assert (params["username"], params["password"]) == ("alice", "pw")
    assert params["connection_class"] is redis.Connection
    assert params["max_connections"] == 10 and params["health_check_interval"] == 25


def test_defaults_and_options() -> None:
    params = connparams(_channel("redis://", connect_timeout=3,
                                 options={"socket_timeout": 2.5, "client_name": "me"}))
    assert (params["host"], params["port"], params["db"]) == ("127.0.0.1", 6379, 0)
    assert params["socket_timeout"] == 2.5 and params["client_name"] == "me"
    # Connection(connect_timeout=...) bounds connecting unless the option says otherwise.
    assert params["socket_connect_timeout"] == 3
    params = connparams(_channel("redis://", connect_timeout=3,
                                 options={"socket_connect_timeout": 1}))
    assert params["socket_connect_timeout"] == 1


def test_unix_socket_url() -> None:
    params = connparams(_channel("redis+socket:///run/redis.sock"))
    assert params["connection_class"] is redis.UnixDomainSocketConnection
    assert params["path"] == "/run/redis.sock"
    assert "host" not in params and "port" not in params


def test_rediss_verifies_the_certificate_unless_told_not_to() -> None:
    params = connparams(_channel("rediss://example.test:6380/0"))
    assert params["connection_class"] is redis.SSLConnection
    assert params["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    params = connparams(_channel("rediss://example.test:6380/0",
                                 ssl={"cert_reqs": "none", "ca_certs": "/ca.pem"}))
    assert params["ssl_cert_reqs"] == ssl.CERT_NONE
    assert params["ssl_check_hostname"] is False
    assert params["ssl_ca_certs"] == "/ca.pem"


def test_bad_tls_options_are_named() -> None:
    with pytest.raises(ValueError, match="ssl_cert_reqs must be one of"):
        connparams(_channel("rediss://h/0", ssl={"ssl_cert_reqs": "sometimes"}))
    with pytest.raises(ValueError, match=r"Unknown TLS option\(s\) \['ssl_colour'\]"):
        connparams(_channel("rediss://h/0", ssl={"colour": "blue"}))


@pytest.mark.parametrize(("vhost", "db"), [("/", 0), ("", 0), ("/3", 3), ("15", 15), (7, 7)])
def test_virtual_host_is_the_database_number(vhost: Any, db: int) -> None:
    assert prepare_virtual_host(vhost) == db


@pytest.mark.parametrize("vhost", ["/abc", "-1", "/1.5"])
def test_a_virtual_host_that_is_no_database_number_is_refused(vhost: str) -> None:
    with pytest.raises(InvalidDatabase, match="database number"):
        prepare_virtual_host(vhost)


def test_a_credential_provider_replaces_the_url_credentials() -> None:
    provider = redis.UsernamePasswordCredentialProvider("bob", "pw2")
    params = connparams(_channel("redis://alice:pw@h/0", options={"credential_provider": provider}))
    assert params["credential_provider"] is provider
    assert "username" not in params and "password" not in params
    with pytest.raises(ValueError, match="CredentialProvider"):
        connparams(_channel("redis://h/0", options={"credential_provider": object()}))


def test_refused_credentials_become_access_refused_without_the_password() -> None:
    channel = _channel("redis://alice:topsecret@h:1/0")
    error = connect_error(channel, redis.AuthenticationError("invalid password"))
    assert isinstance(error, AccessRefused)
    assert "'alice'" in str(error) and "topsecret" not in str(error)


def test_a_certificate_failure_becomes_tls_verification_error() -> None:
    channel = _channel("rediss://h:1/0")
    error = connect_error(channel, redis.ConnectionError("[SSL: CERTIFICATE_VERIFY_FAILED] x"))
    assert isinstance(error, TLSVerificationError)
    assert "ssl_cert_reqs=none" in str(error)
    other = redis.ConnectionError("refused")
    assert connect_error(channel, other) is other
