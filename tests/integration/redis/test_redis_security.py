"""Credentials and TLS, against extra redis-server processes on loopback ports."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from kombu.exceptions import AccessRefused, OperationalError

pytestmark = pytest.mark.redis

PASSWORD = "s3cret-Pa55"


def _roundtrip(conn: Connection) -> None:
    queue = conn.SimpleQueue("kr-security")
    queue.put({"ok": True})
    message = queue.get(timeout=5)
    assert message.payload == {"ok": True}
    message.ack()
    queue.close()


def test_wrong_password_is_refused_once_and_clearly(redis_server: Any) -> None:
    server = redis_server("--requirepass", PASSWORD)
    conn = Connection(f"redis://:wrong-{PASSWORD}@127.0.0.1:{server.port}/0")
    start = time.monotonic()
    with pytest.raises(AccessRefused) as info:
        conn.ensure_connection(max_retries=5, interval_start=1)
    assert time.monotonic() - start < 1.0, "credentials errors must not be retried"
    text = f"{info.value} {info.value!r} {conn!r} {conn.as_uri()}"
    assert PASSWORD not in text
    assert "password" in str(info.value) and f"127.0.0.1:{server.port}" in str(info.value)
    conn.close()
    with Connection(f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0") as good:
        _roundtrip(good)


def test_missing_password_is_refused(redis_server: Any) -> None:
    server = redis_server("--requirepass", PASSWORD)
    with Connection(f"redis://127.0.0.1:{server.port}/0") as conn:
        with pytest.raises(AccessRefused):
            conn.connect()


def test_acl_user(redis_server: Any) -> None:
    server = redis_server("--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all",
                          "--user", "default", "off")
    with Connection(f"redis://alice:alice-pw@127.0.0.1:{server.port}/0") as conn:
        _roundtrip(conn)
    with Connection(f"redis://alice:nope@127.0.0.1:{server.port}/0") as conn:
        with pytest.raises(AccessRefused, match="alice"):
            conn.connect()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: Any) -> dict[str, Path]:
    """A certificate authority, a server certificate for 127.0.0.1 and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kombu-test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kombu-test-client",
        "-keyout", "client.key", "-out", "client.csr")
    (d / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "client.cnf", "-out", "client.crt")
    return {name: d / f"{name}" for name in ("ca.crt", "server.crt", "server.key",
                                              "client.crt", "client.key")}


def _start_tls(redis_server: Any, certs: dict[str, Path], auth_clients: str) -> Any:
    try:
        return redis_server("--tls-cert-file", str(certs["server.crt"]),
                            "--tls-key-file", str(certs["server.key"]),
                            "--tls-ca-cert-file", str(certs["ca.crt"]),
                            "--tls-auth-clients", auth_clients, tls=True)
    except RuntimeError as exc:
        if "tls" in str(exc).lower() and "not" in str(exc).lower():
            pytest.skip(f"redis-server was built without TLS: {exc}")
        raise


@pytest.fixture
def tls_server(redis_server: Any, certs: dict[str, Path]) -> Any:
    """A TLS server that does not ask clients for certificates."""
    return _start_tls(redis_server, certs, "no")


@pytest.fixture
def mtls_server(redis_server: Any, certs: dict[str, Path]) -> Any:
    """A TLS server that requires a client certificate signed by the test CA."""
    return _start_tls(redis_server, certs, "yes")


def test_tls_verified_with_the_ca(tls_server: Any, certs: dict[str, Path]) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0"
    with Connection(url, ssl={"ssl_ca_certs": str(certs["ca.crt"])}) as conn:
        _roundtrip(conn)
    with Connection(f"{url}?ssl_ca_certs={certs['ca.crt']}") as conn:
        _roundtrip(conn)


def test_tls_verifies_by_default(tls_server: Any) -> None:
    from kombu_redis.transport import TLSVerificationError

    with Connection(f"rediss://127.0.0.1:{tls_server.port}/0") as conn:
        start = time.monotonic()
        with pytest.raises(TLSVerificationError) as info:
            conn.ensure_connection(max_retries=3, interval_start=1)
        assert time.monotonic() - start < 2.0
    assert "ssl_cert_reqs=none" in str(info.value)
    assert "could not be verified" in str(info.value)


def test_tls_verification_off_when_asked(tls_server: Any) -> None:
    with Connection(f"rediss://127.0.0.1:{tls_server.port}/0?ssl_cert_reqs=none") as conn:
        _roundtrip(conn)
    import ssl

    with Connection(f"rediss://127.0.0.1:{tls_server.port}/0",
                    ssl={"ssl_cert_reqs": ssl.CERT_NONE}) as conn:
        _roundtrip(conn)


def test_tls_client_certificate(mtls_server: Any, certs: dict[str, Path]) -> None:
    url = f"rediss://127.0.0.1:{mtls_server.port}/0"
    ca, cert, key = (str(certs[n]) for n in ("ca.crt", "client.crt", "client.key"))
    with Connection(url, ssl={"ssl_ca_certs": ca, "ssl_certfile": cert,
                              "ssl_keyfile": key}) as conn:
        _roundtrip(conn)
        # Consuming uses connections of its own (the waiter): certified too.
        with conn.SimpleQueue("kr-mtls") as queue:
            queue.put("blocking")
            message = queue.get(timeout=5)
            assert message.payload == "blocking"
            message.ack()
    with Connection(f"{url}?ssl_ca_certs={ca}&ssl_certfile={cert}&ssl_keyfile={key}") as conn:
        _roundtrip(conn)
    with Connection(url, ssl={"ssl_ca_certs": ca}) as conn:  # no client certificate
        # The server refuses the handshake (how the client sees that varies).
        with pytest.raises(OperationalError):
            conn.ensure_connection(max_retries=0)


def test_credential_provider(redis_server: Any) -> None:
    import redis

    server = redis_server("--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all",
                          "--user", "default", "off")
    url = f"redis://127.0.0.1:{server.port}/0"
    provider = redis.UsernamePasswordCredentialProvider("alice", "alice-pw")
    with Connection(url, transport_options={"credential_provider": provider}) as conn:
        _roundtrip(conn)
        with conn.SimpleQueue("kr-provider") as queue:  # the waiter authenticates too
            queue.put("x")
            message = queue.get(timeout=5)
            message.ack()
    with Connection(url, credential_provider=provider) as conn:  # kombu's Connection argument
        _roundtrip(conn)
    wrong = redis.UsernamePasswordCredentialProvider("alice", "nope")
    with Connection(url, transport_options={"credential_provider": wrong}) as conn:
        start = time.monotonic()
        with pytest.raises(AccessRefused, match="credential provider") as info:
            conn.ensure_connection(max_retries=3, interval_start=1)
        assert time.monotonic() - start < 1.0
        assert "nope" not in str(info.value)
    # The provider's credentials replace those of the URL: a provider class
    # named by its dotted path, instantiated without arguments, has none.
    with Connection(f"redis://alice:alice-pw@127.0.0.1:{server.port}/0", transport_options={
            "credential_provider": "redis.credentials.UsernamePasswordCredentialProvider"}) as conn:
        with pytest.raises(AccessRefused):
            conn.connect()
    # A dotted name is instantiated once per channel: the pool and the
    # connect error use the same provider.
    from kombu_redis.connparams import credential_provider

    with Connection(url) as conn:
        channel = conn.transport.Channel.__new__(conn.transport.Channel)  # not connected
        channel.connection = conn.transport
        channel.credential_provider = "redis.credentials.UsernamePasswordCredentialProvider"
        first = credential_provider(channel)
        assert isinstance(first, redis.UsernamePasswordCredentialProvider)
        assert credential_provider(channel) is first
    with pytest.raises(ValueError, match="CredentialProvider"):
        Connection(url, transport_options={"credential_provider": object()}).connect()
