"""``redisclusters://`` on a real Redis Cluster that speaks TLS only.

Six redis-servers with ``--port 0 --tls-port``, the cluster bus and
replication over TLS too (``--tls-cluster yes``, ``--tls-replication
yes``), certificates made by the test with openssl: a CA and a server
certificate for 127.0.0.1.  Messages go through queues on every master;
a client that does not trust the CA is refused.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from helpers.redis_cluster import LocalCluster, TLSFiles
from kombu import Connection, Consumer, Producer, Queue

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: Any) -> Iterator[LocalCluster]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("cluster-tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=kombu-cluster-test-ca", "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth,clientAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    files = TLSFiles(str(d / "ca.crt"), str(d / "server.crt"), str(d / "server.key"))
    try:
        cluster = LocalCluster(tls=files).start()
    except RuntimeError as exc:
        if "tls" in str(exc).lower() and "not" in str(exc).lower():
            pytest.skip(f"redis-server was built without TLS: {exc}")
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


def test_publish_consume_ack_over_tls_on_every_master(
        tls_cluster: LocalCluster, unique: Callable[..., str]) -> None:
    from kombu_redis.cluster_keys import ClusterKeySchema
    from redis.cluster import ClusterNode, RedisCluster

    assert tls_cluster.tls is not None
    ca = tls_cluster.tls.ca
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                         for n in tls_cluster.live],
                          ssl=True, ssl_ca_certs=ca)
    try:
        names: dict[str, str] = {}
        while len(set(names.values())) < 3:  # a queue on each master
            name = unique("ctls")
            names[name] = client.get_node_from_key("{" + name + "}").name
        url = ";".join(f"redisclusters://{n.address}?ssl_ca_certs={ca}"
                       for n in tls_cluster.live[:2])
        got: list[Any] = []
        with Connection(url) as conn:
            producer = Producer(conn)
            queues = [Queue(n) for n in names]
            for i, name in enumerate(names):
                producer.publish({"i": i}, routing_key=name, declare=[queues[i]])

            def on_message(body: Any, message: Any) -> None:
                got.append(body["i"])
                message.ack()

            with Consumer(conn, queues, callbacks=[on_message]):
                deadline = time.monotonic() + 20
                while len(got) < len(names) and time.monotonic() < deadline:
                    try:
                        conn.drain_events(timeout=1)
                    except socket.timeout:
                        pass
        assert sorted(got) == list(range(len(names)))
        keys = ClusterKeySchema()
        for name in names:  # acked: no record left, over TLS too
            unacked, index, _ = keys.record_keys(name)
            assert client.hlen(unacked) == 0 and client.zcard(index) == 0
    finally:
        client.close()


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_cluster: LocalCluster) -> None:
    node = tls_cluster.live[0]
    with Connection(f"redisclusters://{node.address}",
                    transport_options={"socket_connect_timeout": 5}) as conn:
        with pytest.raises(conn.connection_errors) as info:
            conn.connect()
    assert "certificate" in str(info.value).lower() or "ssl" in str(info.value).lower(), \
        info.value
