"""amqps:// and ssl= through a TLS endpoint in front of the local RabbitMQ.

The test makes its own CA and a server certificate for ``localhost`` with the
``openssl`` command, and runs a small TLS-terminating relay on a free
loopback port that forwards to RabbitMQ's plain port: the client side, which
is what the transport implements, sees a real TLS broker.
"""

from __future__ import annotations

import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Queue
from kombu.exceptions import OperationalError

pytestmark = pytest.mark.rabbitmq

UPSTREAM = ("127.0.0.1", 5672)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    where = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=kombu-pyamqp test CA", cwd=where)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost", cwd=where)
    (where / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=where)
    return {name: str(where / f"{name}") for name in
            ("ca.pem", "server.pem", "server.key")}


class TLSRelay:
    """Accepts TLS on a loopback port and relays the plain bytes to RabbitMQ."""

    def __init__(self, certfile: str, keyfile: str) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.running = True
        self.handshakes = 0
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(client,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket) -> None:
        client.settimeout(5)
        try:
            tls = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        self.handshakes += 1
        upstream = socket.create_connection(UPSTREAM, timeout=5)
        try:
            while self.running:
                ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 0.2)[0]
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is tls else tls).sendall(data)
        except OSError:
            return
        finally:
            tls.close()
            upstream.close()

    def stop(self) -> None:
        self.running = False
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def relay(certificates: dict[str, str], amqp_url: str) -> Iterator[TLSRelay]:
    server = TLSRelay(certificates["server.pem"], certificates["server.key"])
    yield server
    server.stop()


def _round_trip(conn: Connection, name: str) -> Any:
    queue = Queue(name, auto_delete=True)
    conn.Producer().publish({"over": "tls"}, routing_key=name, declare=[queue])
    bound = queue(conn.default_channel)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = bound.get(no_ack=True)
        if message is not None:
            return message.payload
        time.sleep(0.02)
    return None


def test_amqps_url_with_ca_verifies_and_works(relay: TLSRelay, certificates: dict[str, str],
                                              names: Any) -> None:
    conn = Connection(f"amqps://guest:guest@localhost:{relay.port}//",
                      ssl={"ca_certs": certificates["ca.pem"]})
    try:
        assert _round_trip(conn, names("q")) == {"over": "tls"}
        sock = conn.connection.sock
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)
        assert relay.handshakes == 1
    finally:
        conn.close()


def test_ssl_option_on_an_amqp_url(relay: TLSRelay, certificates: dict[str, str],
                                   names: Any) -> None:
    conn = Connection(f"amqp://guest:guest@localhost:{relay.port}//",
                      ssl={"ca_certs": certificates["ca.pem"]})
    try:
        assert _round_trip(conn, names("q")) == {"over": "tls"}
        assert isinstance(conn.connection.sock, ssl.SSLSocket)
    finally:
        conn.close()


def test_unknown_certificate_authority_is_rejected(relay: TLSRelay) -> None:
    conn = Connection(f"amqps://guest:guest@localhost:{relay.port}//", connect_timeout=5)
    with pytest.raises((OperationalError, ssl.SSLError)) as info:
        conn.ensure_connection(max_retries=0)
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert any(isinstance(exc, ssl.SSLCertVerificationError) for exc in chain)
    assert not conn.connected


def test_host_name_is_checked_by_default(relay: TLSRelay,
                                         certificates: dict[str, str], names: Any) -> None:
    # The certificate names "localhost", not "127.0.0.1".
    conn = Connection(f"amqps://guest:guest@127.0.0.1:{relay.port}//",
                      ssl={"ca_certs": certificates["ca.pem"]}, connect_timeout=5)
    with pytest.raises((OperationalError, ssl.SSLError)) as info:
        conn.ensure_connection(max_retries=0)
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert any("127.0.0.1" in str(exc) for exc in chain if exc is not None)
    # Naming the expected host explicitly works.
    ok = Connection(f"amqps://guest:guest@127.0.0.1:{relay.port}//",
                    ssl={"ca_certs": certificates["ca.pem"], "server_hostname": "localhost"})
    try:
        assert _round_trip(ok, names("q")) == {"over": "tls"}
    finally:
        ok.close()


def test_verification_off_only_when_asked(relay: TLSRelay, names: Any) -> None:
    conn = Connection(f"amqps://guest:guest@localhost:{relay.port}//",
                      ssl={"cert_reqs": ssl.CERT_NONE})
    try:
        assert _round_trip(conn, names("q")) == {"over": "tls"}
    finally:
        conn.close()
