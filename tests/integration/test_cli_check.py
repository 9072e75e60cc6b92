"""``kombu check URL`` against real brokers, refused and silent ports, bad
credentials, unknown virtual hosts and databases and an untrusted TLS server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import kombu
from helpers.faultproxy import FaultProxy
from helpers.redis_server import RedisServer
from helpers.sockets import free_port

REDIS = "redis://127.0.0.1:6379/14"
PASSWORD = "Cli-s3cret-Pw"


def _one_error_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kombu check: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.redis
def test_redis_reports_server_latency_heartbeat_and_tls() -> None:
    proc = kombu("check", REDIS)
    assert proc.returncode == 0, proc.stderr
    fields = dict(line.split(None, 1) for line in proc.stdout.splitlines() if " " in line)
    assert fields["transport"].startswith("redis (kombu_redis.transport:Transport, kombu-redis")
    assert fields["server"].startswith("Redis ")
    assert "PING" in proc.stdout and "health check every" in proc.stdout
    assert fields["tls"] == "off"
    assert proc.stdout.splitlines()[-1] == "ok"


@pytest.mark.redis
def test_redis_json() -> None:
    proc = kombu("check", REDIS, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["url"] == REDIS
    assert report["transport"]["name"] == "redis"
    assert report["round_trip_ms"] > 0 and report["tls"] == {"enabled": False}


@pytest.mark.rabbitmq
def test_amqp_reports_server_and_negotiated_heartbeat(amqp_url: str) -> None:
    proc = kombu("check", amqp_url, "--heartbeat", "7", "--json", secret="guest")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["server"].startswith("RabbitMQ ")
    assert report["heartbeat"].startswith("7 s (the server proposed")
    assert report["transport"]["distribution"] == "kombu-pyamqp"
    assert report["url"] == "amqp://**:**@127.0.0.1:5672//"
    off = kombu("check", amqp_url, secret="guest")
    assert off.returncode == 0 and "heartbeat   off" in off.stdout


@pytest.mark.parametrize("url", ["memory://", "dictq://"])
def test_in_process_transports(url: str) -> None:
    proc = kombu("check", url)
    assert proc.returncode == 0, proc.stderr
    assert "not used by this transport" in proc.stdout


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_refused(scheme: str) -> None:
    port = free_port()
    url = f"{scheme}://user:{PASSWORD}@127.0.0.1:{port}/0"
    _one_error_line(kombu("check", url, secret=PASSWORD), 4, "connection refused",
                    f"127.0.0.1:{port}")


def test_failure_as_json() -> None:
    port = free_port()
    proc = kombu("check", "--json", f"amqp://u:{PASSWORD}@127.0.0.1:{port}//", secret=PASSWORD)
    assert proc.returncode == 4
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["exit_code"] == 4
    assert report["category"] == "connection refused"
    assert report["url"] == f"amqp://u:**@127.0.0.1:{port}//"
    assert proc.stderr.startswith("kombu check: error: connection refused")


@pytest.fixture
def silent() -> Iterator[FaultProxy]:
    """A port that accepts connections and never answers (a blackholed proxy)."""
    with FaultProxy(("127.0.0.1", free_port())) as proxy:
        proxy.blackhole()
        yield proxy


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_silent_port_times_out_within_the_bound(scheme: str, silent: FaultProxy) -> None:
    url = f"{scheme}://user:{PASSWORD}@127.0.0.1:{silent.port}/0"
    proc = kombu("check", "--timeout", "1", url, secret=PASSWORD, timeout=20)
    _one_error_line(proc, 5, "timed out", f"127.0.0.1:{silent.port}")
    assert silent.connections_accepted >= 1


@pytest.mark.rabbitmq
def test_amqp_wrong_credentials() -> None:
    user = f"cli-nobody-{uuid.uuid4().hex[:6]}"
    proc = kombu("check", f"amqp://{user}:{PASSWORD}@127.0.0.1:5672//", secret=PASSWORD)
    _one_error_line(proc, 6, "wrong credentials", user)


@pytest.mark.rabbitmq
def test_amqp_unknown_vhost() -> None:
    vhost = f"cli-missing-{uuid.uuid4().hex[:6]}"
    proc = kombu("check", f"amqp://guest:guest@127.0.0.1:5672/{vhost}", secret="guest")
    _one_error_line(proc, 7, "unknown virtual host", vhost)


@pytest.mark.redis
def test_redis_unknown_database() -> None:
    _one_error_line(kombu("check", "redis://127.0.0.1:6379/99"), 7, "unknown database",
                    "no database 99")


@pytest.fixture
def redis_server() -> Iterator[list[RedisServer]]:
    started: list[RedisServer] = []
    yield started
    for server in started:
        server.stop()


def test_redis_wrong_password(redis_server: list[RedisServer]) -> None:
    redis_server.append(server := RedisServer("--requirepass", PASSWORD))
    url = f"redis://:wrong-{PASSWORD}@127.0.0.1:{server.port}/0"
    _one_error_line(kombu("check", url, secret=PASSWORD), 6, "wrong credentials")
    ok = kombu("check", f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0", secret=PASSWORD)
    assert ok.returncode == 0, ok.stderr
    assert f"redis://:**@127.0.0.1:{server.port}/0" in ok.stdout


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("cli-tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=kombu-cli-test-ca", "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    return {name: d / name for name in ("ca.crt", "server.crt", "server.key")}


def test_tls_server_with_an_untrusted_ca(redis_server: list[RedisServer],
                                         certs: dict[str, Path]) -> None:
    try:
        server = RedisServer("--tls-cert-file", str(certs["server.crt"]),
                             "--tls-key-file", str(certs["server.key"]),
                             "--tls-ca-cert-file", str(certs["ca.crt"]),
                             "--tls-auth-clients", "no", tls=True)
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"redis-server was built without TLS: {exc}")
        raise
    redis_server.append(server)
    url = f"rediss://:{PASSWORD}@127.0.0.1:{server.port}/0"
    _one_error_line(kombu("check", url, secret=PASSWORD), 8, "certificate rejected")
    trusted = kombu("check", f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={certs['ca.crt']}",
                    "--json")
    assert trusted.returncode == 0, trusted.stderr
    tls = json.loads(trusted.stdout)["tls"]
    assert tls["enabled"] is True and tls["verified"] is True
    assert tls["version"].startswith("TLS")


def test_plain_client_against_the_tls_port_is_one_line(redis_server: list[RedisServer],
                                                       certs: dict[str, Path]) -> None:
    try:
        server = RedisServer("--tls-cert-file", str(certs["server.crt"]),
                             "--tls-key-file", str(certs["server.key"]),
                             "--tls-ca-cert-file", str(certs["ca.crt"]), tls=True)
    except RuntimeError as exc:
        pytest.skip(f"redis-server was built without TLS: {exc}")
    redis_server.append(server)
    proc = kombu("check", "--timeout", "2", f"redis://127.0.0.1:{server.port}/0")
    _one_error_line(proc, 4, "connection reset", "rediss://")


def test_unknown_transport_and_bad_url() -> None:
    line = _one_error_line(kombu("check", "sqllite://"), 3, "No such transport: 'sqllite'")
    assert "Installed transports:" in line
    _one_error_line(kombu("check", "127.0.0.1:6379"), 2, "is not a broker URL")


def test_traceback_only_when_asked() -> None:
    port = free_port()
    proc = kombu("check", "--traceback", f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
                 secret=PASSWORD)
    assert proc.returncode == 4
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("kombu check: error: connection refused")


def test_refused_port_really_refuses() -> None:
    """The premise of test_refused: nothing listens on a free port."""
    port = free_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
