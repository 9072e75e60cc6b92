"""amqps://, ssl= and the EXTERNAL login against RabbitMQ's own TLS listener.

The module makes a CA, a server certificate for ``localhost`` and a client
certificate with the ``openssl`` command, and starts one extra RabbitMQ node
for all its tests (``helpers.rabbitmq_node``): a TLS listener on a free
loopback port that verifies client certificates when they are sent, the
login methods PLAIN, AMQPLAIN and EXTERNAL (``rabbitmq_auth_mechanism_ssl``,
user name from the certificate's common name) and a user named like the
client certificate.  The shared broker on 127.0.0.1:5672 is not used.

Without ``openssl`` or ``rabbitmq-server`` the tests are skipped, and failed
under ``CI=true``.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import under_ci
from helpers.rabbitmq_node import RabbitMQNode, RabbitMQNodeError, TLSFiles
from kombu import Connection, Queue
from kombu.exceptions import AccessRefused, OperationalError

pytestmark = pytest.mark.slow

pytest.importorskip("amqp", reason="kombu-pyamqp needs the amqp library (pip install amqp)")

#: Common name of the client certificate, and so the EXTERNAL user's name.
CLIENT_CN = "kombu-tls-client"


def _unavailable(message: str) -> None:
    """Skip the module's tests; fail them under CI, where TLS must be tested."""
    if under_ci():
        pytest.fail(f"{message} (required under CI=true)", pytrace=False)
    pytest.skip(message)


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"openssl {' '.join(args)} failed:\n{proc.stderr}"


def _signed(where: Path, name: str, subject: str, extensions: str) -> None:
    """``name.key`` and ``name.pem``, signed by the test CA."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", subject, cwd=where)
    (where / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
             "-extfile", f"{name}.ext", cwd=where)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths of ``ca.pem``, ``server.pem``/``.key`` and ``client.pem``/``.key``.

    The server certificate names only ``localhost`` (no IP address), so that
    connecting to 127.0.0.1 shows the host name check.
    """
    if shutil.which("openssl") is None:
        _unavailable("the openssl command is not installed")
    where = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=kombu-pyamqp test CA", cwd=where)
    _signed(where, "server", "/CN=localhost",
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\n"
            "extendedKeyUsage=serverAuth\n")
    _signed(where, "client", f"/CN={CLIENT_CN}",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    return {name: str(where / name) for name in
            ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.fixture(scope="module")
def node(certificates: dict[str, str]) -> Iterator[RabbitMQNode]:
    """One RabbitMQ node with a TLS listener and EXTERNAL login, for the module."""
    broker = RabbitMQNode(
        tls=TLSFiles(certificates["ca.pem"], certificates["server.pem"],
                     certificates["server.key"]),
        plugins=["rabbitmq_auth_mechanism_ssl"],
        config=[
            "auth_mechanisms.1 = PLAIN",
            "auth_mechanisms.2 = AMQPLAIN",
            "auth_mechanisms.3 = EXTERNAL",
            "ssl_cert_login_from = common_name",
        ],
    )
    try:
        broker.start()
    except RabbitMQNodeError as exc:
        _unavailable(f"cannot start a RabbitMQ node with a TLS listener: {exc}")
    try:
        # EXTERNAL logs in as the certificate's common name, which must be a user.
        broker.add_user(CLIENT_CN)
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def connections() -> Iterator[list[Connection]]:
    """Connections to close after the test."""
    made: list[Connection] = []
    yield made
    for conn in made:
        conn.close()


def _connect(made: list[Connection], url: str, **kwargs: Any) -> Connection:
    kwargs.setdefault("connect_timeout", 5)
    conn = Connection(url, **kwargs)
    made.append(conn)
    return conn


def _round_trip(conn: Connection, **properties: Any) -> Any:
    """Publish to a fresh queue and get the message back (None if it never came)."""
    name = f"kpa-tls-{uuid.uuid4().hex[:10]}"
    queue = Queue(name, auto_delete=True)
    conn.Producer().publish({"over": "tls"}, routing_key=name, declare=[queue], **properties)
    bound = queue(conn.default_channel)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = bound.get(no_ack=True)
        if message is not None:
            return message
        time.sleep(0.02)
    return None


def _refusal(conn: Connection) -> BaseException:
    """The error of one connection attempt that must fail, with its causes."""
    with pytest.raises((OperationalError, ssl.SSLError, AccessRefused)) as info:
        conn.ensure_connection(max_retries=0)
    assert not conn.connected
    return info.value


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _broker_connections(node: RabbitMQNode) -> dict[int, dict[str, str]]:
    """The node's AMQP connections by client port: ``ssl``, ``user``, ``auth_mechanism``."""
    fields = ["peer_port", "ssl", "user", "auth_mechanism"]
    out = node.ctl("-q", "list_connections", "--no-table-headers", *fields).stdout
    found = {}
    for line in out.splitlines():
        values = line.split("\t")
        if len(values) == len(fields) and values[0].isdigit():
            found[int(values[0])] = dict(zip(fields[1:], values[1:]))
    return found


def test_amqps_url_with_ca_verifies_and_works(node: RabbitMQNode,
                                              certificates: dict[str, str],
                                              connections: list[Connection]) -> None:
    conn = _connect(connections, f"amqps://guest:guest@localhost:{node.tls_port}//",
                    ssl={"ca_certs": certificates["ca.pem"]})
    message = _round_trip(conn)
    assert message is not None and message.payload == {"over": "tls"}
    sock = conn.connection.sock
    assert isinstance(sock, ssl.SSLSocket)
    assert sock.getpeername()[1] == node.tls_port
    assert sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)
    # The broker, too, sees a TLS connection of guest.
    seen = _broker_connections(node)[sock.getsockname()[1]]
    assert seen["ssl"] == "true"
    assert seen["user"] == "guest"


def test_ssl_option_on_an_amqp_url(node: RabbitMQNode, certificates: dict[str, str],
                                   connections: list[Connection]) -> None:
    assert node.tls_port is not None
    conn = _connect(connections, f"amqp://guest:guest@localhost:{node.tls_port}//",
                    ssl={"ca_certs": certificates["ca.pem"]})
    message = _round_trip(conn)
    assert message is not None and message.payload == {"over": "tls"}
    assert isinstance(conn.connection.sock, ssl.SSLSocket)
    # Without ssl= the same URL form is plain AMQP (on the plain port).
    plain = _connect(connections, f"amqp://guest:guest@localhost:{node.port}//")
    plain.ensure_connection(max_retries=0)
    assert not isinstance(plain.connection.sock, ssl.SSLSocket)


def test_unknown_certificate_authority_is_rejected(node: RabbitMQNode,
                                                   connections: list[Connection]) -> None:
    # No ca_certs: the system's authorities do not know the test CA.
    conn = _connect(connections, f"amqps://guest:guest@localhost:{node.tls_port}//")
    chain = _chain(_refusal(conn))
    assert any(isinstance(exc, ssl.SSLCertVerificationError) for exc in chain), chain
    assert any("certificate verify failed" in str(exc) for exc in chain), chain


def test_host_name_is_checked_by_default(node: RabbitMQNode, certificates: dict[str, str],
                                         connections: list[Connection]) -> None:
    # The certificate names "localhost", not "127.0.0.1".
    conn = _connect(connections, f"amqps://guest:guest@127.0.0.1:{node.tls_port}//",
                    ssl={"ca_certs": certificates["ca.pem"]})
    chain = _chain(_refusal(conn))
    assert any(isinstance(exc, ssl.SSLCertVerificationError) for exc in chain), chain
    assert any("127.0.0.1" in str(exc) for exc in chain), chain
    # Naming the expected host explicitly works.
    ok = _connect(connections, f"amqps://guest:guest@127.0.0.1:{node.tls_port}//",
                  ssl={"ca_certs": certificates["ca.pem"], "server_hostname": "localhost"})
    message = _round_trip(ok)
    assert message is not None and message.payload == {"over": "tls"}


def test_verification_off_only_when_asked(node: RabbitMQNode,
                                          connections: list[Connection]) -> None:
    conn = _connect(connections, f"amqps://guest:guest@127.0.0.1:{node.tls_port}//",
                    ssl={"cert_reqs": ssl.CERT_NONE})
    message = _round_trip(conn)
    assert message is not None and message.payload == {"over": "tls"}
    sock = conn.connection.sock
    assert isinstance(sock, ssl.SSLSocket)
    # Nothing was verified: no CA, and the address is not the certificate's name.
    assert sock.getpeercert() == {}
    assert sock.context.verify_mode == ssl.CERT_NONE


def test_tls_options_in_the_url_query(node: RabbitMQNode, certificates: dict[str, str],
                                      connections: list[Connection]) -> None:
    from urllib.parse import quote

    ca = quote(certificates["ca.pem"], safe="")
    verified = _connect(connections,
                        f"amqps://guest:guest@localhost:{node.tls_port}//?ssl_ca_certs={ca}")
    assert _round_trip(verified).payload == {"over": "tls"}
    assert verified.connection.sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)
    unverified = _connect(connections,
                          f"amqps://guest:guest@127.0.0.1:{node.tls_port}//?ssl_cert_reqs=none")
    assert _round_trip(unverified).payload == {"over": "tls"}
    assert unverified.connection.sock.context.verify_mode == ssl.CERT_NONE
    # the address is not the certificate's name: verified, but no host name check
    no_name = _connect(connections, f"amqps://guest:guest@127.0.0.1:{node.tls_port}//"
                                    f"?ssl_ca_certs={ca}&ssl_check_hostname=false")
    assert _round_trip(no_name).payload == {"over": "tls"}
    assert no_name.connection.sock.context.verify_mode == ssl.CERT_REQUIRED


def test_external_login_with_a_client_certificate(node: RabbitMQNode,
                                                  certificates: dict[str, str],
                                                  connections: list[Connection]) -> None:
    conn = _connect(connections, f"amqps://localhost:{node.tls_port}//",
                    login_method="EXTERNAL",
                    ssl={"ca_certs": certificates["ca.pem"],
                         "certfile": certificates["client.pem"],
                         "keyfile": certificates["client.key"],
                         "cert_reqs": ssl.CERT_REQUIRED})
    conn.ensure_connection(max_retries=0)
    assert [auth.mechanism for auth in conn.connection.authentication] == [b"EXTERNAL"]
    # The broker checks user_id against the logged-in user: the certificate's name.
    message = _round_trip(conn, user_id=CLIENT_CN)
    assert message is not None and message.payload == {"over": "tls"}
    assert message.properties["user_id"] == CLIENT_CN
    seen = _broker_connections(node)[conn.connection.sock.getsockname()[1]]
    assert seen == {"ssl": "true", "user": CLIENT_CN, "auth_mechanism": "EXTERNAL"}


def test_external_login_without_a_client_certificate_is_refused(
        node: RabbitMQNode, certificates: dict[str, str],
        connections: list[Connection]) -> None:
    conn = _connect(connections, f"amqps://localhost:{node.tls_port}//",
                    login_method="EXTERNAL", ssl={"ca_certs": certificates["ca.pem"]})
    retries: list[BaseException] = []
    started = time.monotonic()
    with pytest.raises(AccessRefused) as info:
        # Retries would be allowed, but a refused login is never retried.
        conn.ensure_connection(max_retries=5, interval_start=1,
                               errback=lambda exc, wait: retries.append(exc))
    assert retries == []
    assert time.monotonic() - started < 5
    assert not conn.connected
    text = str(info.value)
    assert "EXTERNAL" in text
    assert "certificate" in text.lower()


def test_write_timeout_over_tls_is_a_recoverable_connection_error(
        node: RabbitMQNode, certificates: dict[str, str]) -> None:
    import socket

    import amqp
    from helpers.faultproxy import FaultProxy

    assert node.tls_port is not None
    # The kernel's TCP_USER_TIMEOUT (1 s by the driver) out of the way: only
    # write_timeout (SO_SNDTIMEO) ends the write.
    options = {"write_timeout": 1,
               "socket_settings": {getattr(socket, "TCP_USER_TIMEOUT", 18): 60_000}}
    with FaultProxy(("127.0.0.1", node.tls_port)) as proxy:
        conn = Connection(proxy.url("amqps", "//"), connect_timeout=5,
                          ssl={"ca_certs": certificates["ca.pem"], "server_hostname": "localhost"},
                          transport_options=options)
        try:
            producer = conn.Producer()
            producer.publish("small", routing_key="nowhere")
            proxy.stall(seconds=30)  # a write that ignored write_timeout would end then
            started = time.monotonic()
            with pytest.raises(amqp.exceptions.RecoverableConnectionError) as info:
                producer.publish(b"x" * 50_000_000, routing_key="nowhere")
            assert time.monotonic() - started < 20
            assert "timed out" in str(info.value)
            assert isinstance(info.value.__cause__, OSError), repr(info.value.__cause__)
            assert not conn.connected
            # No TLS close_notify (nor connection.close) into the stalled socket.
            started = time.monotonic()
            conn.close()
            assert time.monotonic() - started < 1
        finally:
            conn.collect()
