"""ACL users, passwords, health checks and socket timeouts on a real Redis Cluster.

The module starts a cluster of its own (three masters, three replicas on
loopback): its tests change users and passwords, pause a node and kill
client connections, which the session's cluster is shared against.  ACL
rules are per node, so every user is created on all six nodes (and
removed from all of them afterwards).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import pytest
from helpers.draining import drain_until
from helpers.faultproxy import FaultProxy
from helpers.redis_cluster import LocalCluster
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.exceptions import AccessRefused, OperationalError

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(120)]

redis = pytest.importorskip("redis")

#: What kombu-redis needs on a cluster (the README's rules).
RULES = ("~*", "&*", "+@read", "+@write", "+@keyspace", "+@scripting", "+@pubsub",
         "+@connection", "+cluster|slots")
PASSWORD = "cl-s3cret-Pa55"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    own = LocalCluster().start()
    try:
        yield own
    finally:
        own.stop()


def admin(cluster: LocalCluster, port: int, *args: Any, password: str | None = None) -> Any:
    """One command on the node at ``port`` as the default user."""
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5,
                         socket_connect_timeout=5)
    try:
        return client.execute_command(*args)
    finally:
        client.close()


@pytest.fixture
def acl_user(cluster: LocalCluster) -> Iterator[Callable[..., None]]:
    """``acl_user(name, password, *rules, ports=None)``: the user on every node (or
    on ``ports``); every user made is deleted from every node afterwards."""
    made: set[str] = set()

    def make(name: str, password: str, *rules: str, ports: list[int] | None = None) -> None:
        made.add(name)
        for port in ports if ports is not None else [n.port for n in cluster.nodes]:
            assert admin(cluster, port, "ACL", "SETUSER", name, "reset", "on",
                         f">{password}", *rules) in (b"OK", "OK", True)

    yield make
    for node in cluster.nodes:
        for name in made:
            admin(cluster, node.port, "ACL", "DELUSER", name)


def cluster_client(cluster: LocalCluster) -> Any:
    from redis.cluster import ClusterNode, RedisCluster

    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster.live])


def master_of(client: Any, queue: str) -> int:
    """Port of the master that serves ``queue``'s keys."""
    return int(client.get_node_from_key("{" + queue + "}").port)


def queues_on_every_master(cluster: LocalCluster, unique: Callable[..., str],
                           per_master: int = 2) -> dict[str, int]:
    """Queue name -> the port of its master, ``per_master`` queues on each master."""
    client = cluster_client(cluster)
    try:
        masters = {int(n.port) for n in client.get_primaries()}
        found: dict[str, int] = {}
        count = dict.fromkeys(masters, 0)
        for _ in range(2000):
            if all(c >= per_master for c in count.values()):
                break
            name = unique("csec")
            port = master_of(client, name)
            if count[port] < per_master:
                count[port] += 1
                found[name] = port
        assert all(c >= per_master for c in count.values()), count
        return found
    finally:
        client.close()


def url_of(cluster: LocalCluster, auth: str = "", seeds: int = 2) -> str:
    return ";".join(f"rediscluster://{auth}{n.address}" for n in cluster.live[:seeds])


def roundtrip(conn: Connection, names: list[str], per_queue: int = 2) -> list[Any]:
    """Publish ``per_queue`` messages to each of ``names``, consume and ack them all."""
    producer = Producer(conn)
    queues = [Queue(n) for n in names]
    sent = []
    for i in range(per_queue):
        for queue in queues:
            body = {"q": queue.name, "i": i}
            producer.publish(body, routing_key=queue.name, declare=[queue])
            sent.append(body)
    got: list[Any] = []
    with Consumer(conn, queues, callbacks=[lambda b, m: (got.append(b), m.ack())]):
        drain_until(conn, got, len(sent), timeout=20)
    assert sorted(got, key=repr) == sorted(sent, key=repr)
    return got


def assert_no_records(cluster: LocalCluster, names: list[str]) -> None:
    from kombu_redis.cluster_keys import ClusterKeySchema

    keys = ClusterKeySchema()
    client = cluster_client(cluster)
    try:
        for name in names:
            unacked, index, _ = keys.record_keys(name)
            assert client.hlen(unacked) == 0 and client.zcard(index) == 0, name
            assert sum(client.llen(k) for k in keys.queue_keys(name)) == 0, name
    finally:
        client.close()


def clients_named(cluster: LocalCluster, port: int, name: str) -> list[dict[str, str]]:
    """The CLIENT LIST entries of the node at ``port`` with client name ``name``."""
    text = admin(cluster, port, "CLIENT", "LIST")
    text = text.decode() if isinstance(text, bytes) else text
    entries = [dict(f.split("=", 1) for f in line.split() if "=" in f)
               for line in text.splitlines()]
    return [e for e in entries if e.get("name") == name]


@contextmanager
def default_password(cluster: LocalCluster) -> Iterator[None]:
    """requirepass-style: a password on the default user of every node (replicas
    authenticate to their masters with masterauth); taken away afterwards."""
    ports = [n.port for n in cluster.nodes]
    for port in ports:
        admin(cluster, port, "CONFIG", "SET", "masterauth", PASSWORD)
        admin(cluster, port, "ACL", "SETUSER", "default", f">{PASSWORD}")
    try:
        yield
    finally:
        for port in ports:  # with nopass any password is accepted: safe to repeat
            admin(cluster, port, "ACL", "SETUSER", "default", "resetpass", "nopass",
                  password=PASSWORD)
            admin(cluster, port, "CONFIG", "SET", "masterauth", "")


# -- ACL users -------------------------------------------------------------------------

def test_acl_user_on_every_node(cluster: LocalCluster, acl_user: Any,
                                unique: Callable[..., str]) -> None:
    """The README's rules suffice: queues on all three masters, a fanout exchange,
    consumers blocking on client-side tracking; every connection is the user's."""
    acl_user("alice", "alice-pw", *RULES)
    names = queues_on_every_master(cluster, unique)
    client_name = unique("csec-client")
    with Connection(url_of(cluster, "alice:alice-pw@"),
                    transport_options={"client_name": client_name}) as conn:
        roundtrip(conn, list(names))
        channel = conn.default_channel
        assert channel.fetcher.tracking, "CLIENT is allowed: consumers block, not poll"
        fan = Exchange(unique("csec-fan"), type="fanout")
        fq = [Queue(unique("csec-fq"), fan) for _ in range(2)]
        got: list[Any] = []
        with Consumer(conn, fq, callbacks=[lambda b, m: (got.append(b), m.ack())]):
            Producer(conn).publish("to-all", exchange=fan)
            drain_until(conn, got, 2, timeout=10)
        assert got == ["to-all", "to-all"]
        for port in set(names.values()):  # links and waiters on every master: alice
            mine = clients_named(cluster, port, client_name)
            assert len(mine) >= 2, (port, mine)
            assert {e["user"] for e in mine} == {"alice"}, mine
    assert_no_records(cluster, list(names))


@pytest.mark.parametrize("auth,user", [("alice:Bad-Pw-9@", "alice"), ("nobody:Bad-Pw-9@", "nobody"),
                                       ("", "default")])
def test_refused_credentials_are_not_retried(cluster: LocalCluster, acl_user: Any,
                                             auth: str, user: str) -> None:
    acl_user("alice", "alice-pw", *RULES)
    retries: list[Any] = []
    with default_password(cluster):
        conn = Connection(url_of(cluster, auth))
        with pytest.raises(AccessRefused) as info:
            conn.ensure_connection(max_retries=3, interval_start=1,
                                   errback=lambda exc, wait: retries.append(exc))
        conn.close()
    assert retries == [], "a refused login must not be retried"
    text = str(info.value)
    assert f"user {user!r}" in text and "every node" in text, text
    assert "Bad-Pw-9" not in f"{text} {info.value!r}"
    assert cluster.live[0].address in text, text
    assert isinstance(info.value, redis.exceptions.AuthenticationError)


def test_user_missing_on_one_master_is_named(cluster: LocalCluster, acl_user: Any,
                                             unique: Callable[..., str]) -> None:
    """A user created on some nodes only: the node that refuses is named, once."""
    names = queues_on_every_master(cluster, unique, per_master=1)
    seeds = {n.port for n in cluster.live[:2]}
    missing = next(p for p in sorted(set(names.values())) if p not in seeds)
    acl_user("carol", "carol-pw", *RULES,
             ports=[n.port for n in cluster.nodes if n.port != missing])
    queue = next(q for q, p in names.items() if p == missing)
    with Connection(url_of(cluster, "carol:carol-pw@")) as conn:
        with pytest.raises(AccessRefused) as info:
            conn.connect()  # may already open a link to the refusing master
            Producer(conn).publish("x", routing_key=queue, retry=True,
                                   retry_policy={"max_retries": 3, "interval_start": 1})
    text = str(info.value)
    assert f"127.0.0.1:{missing}" in text and "'carol'" in text and "every node" in text, text


def test_acl_without_client_falls_back_to_polling(cluster: LocalCluster, acl_user: Any,
                                                  unique: Callable[..., str],
                                                  caplog: Any) -> None:
    """CLIENT forbidden (no tracking): consumers poll and still get every message."""
    acl_user("bob", "bob-pw", *RULES, "-client")
    names = list(queues_on_every_master(cluster, unique, per_master=1))
    queues = [Queue(n) for n in names]
    with Connection(url_of(cluster, "bob:bob-pw@")) as conn, \
            caplog.at_level(logging.WARNING, logger="kombu.transport.redis"):
        got: list[Any] = []
        with Consumer(conn, queues, callbacks=[lambda b, m: (got.append(b), m.ack())]):
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=0.3)
            assert not conn.default_channel.fetcher.tracking
            producer = Producer(conn.channel())
            for name in names:  # published after the consumer started waiting
                producer.publish(name, routing_key=name)
            drain_until(conn, got, len(names), timeout=10)
        assert sorted(got) == sorted(names)
    assert "refused client-side tracking" in caplog.text
    assert_no_records(cluster, names)


def test_password_of_the_default_user(cluster: LocalCluster,
                                      unique: Callable[..., str]) -> None:
    """requirepass-style: the password of the default user, on every node."""
    names = list(queues_on_every_master(cluster, unique, per_master=1))
    with default_password(cluster):
        with Connection(url_of(cluster, f":{PASSWORD}@")) as conn:
            roundtrip(conn, names)
        with Connection(url_of(cluster)) as conn:
            with pytest.raises(AccessRefused, match="'default'"):
                conn.connect()
    assert_no_records(cluster, names)


# -- health checks -----------------------------------------------------------------------

class Monitor:
    """``MONITOR`` of one node; every read bounded."""

    def __init__(self, port: int) -> None:
        self.conn = redis.Connection(host="127.0.0.1", port=port)
        self.conn.connect()
        self.conn.send_command("MONITOR")
        assert self.conn.read_response() == b"OK"

    def commands_of(self, addr: str, seconds: float = 0.3) -> list[str]:
        """Names of the commands ``addr`` sent, until ``seconds`` of quiet."""
        out = []
        while self.conn.can_read(seconds):
            line = self.conn.read_response().decode(errors="replace")
            if f" {addr}]" in line:
                out.append(line.split("] ", 1)[1].split()[0].strip('"').upper())
        return out

    def close(self) -> None:
        self.conn.disconnect()


def _addr(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


@pytest.mark.parametrize("interval,pings", [(1, True), (0, False)])
def test_health_check_interval_reaches_every_node_link(
        cluster: LocalCluster, unique: Callable[..., str], interval: int,
        pings: bool) -> None:
    """The command link of every master checks the connection (PING) after
    ``health_check_interval`` idle seconds; the waiters do not (as on one Redis)."""
    names = queues_on_every_master(cluster, unique, per_master=1)
    with Connection(url_of(cluster),
                    transport_options={"health_check_interval": interval}) as conn:
        channel = conn.default_channel
        with Consumer(conn, [Queue(n) for n in names], callbacks=[]):
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=0.3)  # links and waiters to every master
            links = channel.link.links
            assert {int(name.rsplit(":", 1)[1]) for name in links} == set(names.values())
            assert {link._conn.health_check_interval for link in links.values()} == {interval}
            waiters = channel.fetcher.waiters
            assert set(waiters) == {("127.0.0.1", p) for p in names.values()}
            assert {w.conn.health_check_interval for w in waiters.values()} == {0}
        queue, port = next(iter(names.items()))
        link = links[f"127.0.0.1:{port}"]
        monitor = Monitor(port)
        try:
            me = _addr(link.sock)
            time.sleep(1.2)  # idle for longer than the interval
            monitor.commands_of(me, 0.1)
            assert channel._size(queue) == 0
            mine = monitor.commands_of(me)
        finally:
            monitor.close()
        assert mine and mine[-1] == "LLEN", mine
        assert (mine[0] == "PING") is pings, mine
    with Connection(url_of(cluster)) as conn:  # the default, as on one Redis
        from kombu_redis.options import DEFAULT_HEALTH_CHECK_INTERVAL

        links = conn.default_channel.link.links
        assert {link._conn.health_check_interval for link in links.values()} == {
            DEFAULT_HEALTH_CHECK_INTERVAL}


def test_connections_killed_by_the_server_are_noticed(cluster: LocalCluster,
                                                     unique: Callable[..., str]) -> None:
    """CLIENT KILL of every connection of a producer's and a consumer's channel
    on one master (found by client name): the next use of each notices it (the
    command link's health check PING, before the command is sent; the
    waiter's read).  The producer gets one error, as on one Redis, and its
    retry succeeds; the consumer gets none: that master is retried a moment
    later on a new connection while the queues of the others are served.
    No message is lost or duplicated."""
    names = queues_on_every_master(cluster, unique, per_master=1)
    victim = next(iter(names.values()))
    client_name = unique("csec-killed")
    options = {"health_check_interval": 1, "client_name": client_name}
    got: list[Any] = []
    sent: list[Any] = []
    publish_errors: list[BaseException] = []
    drain_errors: list[BaseException] = []
    queues = [Queue(n) for n in names]
    with Connection(url_of(cluster), transport_options=options) as conn, \
            Connection(url_of(cluster), transport_options=options) as pconn:
        producer = Producer(pconn)
        policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.1,
                  "errback": lambda exc, interval: publish_errors.append(exc)}

        def publish(tag: str) -> None:
            for queue in queues:
                body = {"q": queue.name, "tag": tag}
                producer.publish(body, routing_key=queue.name, declare=[queue], retry=True,
                                 retry_policy=policy)
                sent.append(body)

        def drain(n: int) -> None:
            deadline = time.monotonic() + 20
            while len(got) < n:
                assert time.monotonic() < deadline, \
                    f"received {len(got)} of {n} ({drain_errors})"
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass
                except conn.recoverable_connection_errors as exc:
                    drain_errors.append(exc)  # noticed; the next drain reconnects

        with Consumer(conn, queues, callbacks=[lambda b, m: (got.append(b), m.ack())]):
            publish("before")
            drain(len(sent))
            assert publish_errors == drain_errors == []
            killed = clients_named(cluster, victim, client_name)
            assert len(killed) >= 3, killed  # two command links and a waiter at least
            for entry in killed:
                admin(cluster, victim, "CLIENT", "KILL", "ID", entry["id"])
            assert clients_named(cluster, victim, client_name) == []
            time.sleep(1.2)  # idle past health_check_interval
            publish("after")
            drain(len(sent))
            assert len(publish_errors) == 1, publish_errors
            assert drain_errors == [], drain_errors
            assert len(clients_named(cluster, victim, client_name)) >= 3  # back again
            # The transport's shared cluster client retries on a new connection.
            channel = conn.default_channel
            key = channel.keys.queue_key(next(iter(names)), 0)
            assert channel.client.llen(key) == 0
    assert sorted(got, key=repr) == sorted(sent, key=repr)
    assert_no_records(cluster, list(names))


# -- socket timeouts ---------------------------------------------------------------------

def test_socket_connect_timeout_bounds_a_silent_seed(cluster: LocalCluster,
                                                     unique: Callable[..., str]) -> None:
    """A seed that accepts and never answers: connecting gives up after
    socket_connect_timeout (not Connection's connect_timeout, longer than the
    test's timeout); with another seed listed, that one is used."""
    node = cluster.live[0]
    options = {"socket_connect_timeout": 0.5}
    with FaultProxy(("127.0.0.1", node.port)) as proxy:
        proxy.blackhole()
        conn = Connection(proxy.url("rediscluster"), connect_timeout=600,
                          transport_options=options)
        with pytest.raises(OperationalError, match="(?i)timeout"):
            conn.ensure_connection(max_retries=0)
        conn.close()
        url = f"{proxy.url('rediscluster')};rediscluster://{cluster.live[1].address}"
        with Connection(url, connect_timeout=600, transport_options=options) as good:
            roundtrip(good, list(queues_on_every_master(cluster, unique, per_master=1)), 1)


def test_socket_timeout_reaches_the_node_links(cluster: LocalCluster,
                                               unique: Callable[..., str]) -> None:
    """A master that stops answering (SIGSTOP, shorter than the cluster's node
    timeout): a command on its link times out after socket_timeout; once it
    answers again the next command succeeds."""
    from redis import exceptions as rexc

    names = queues_on_every_master(cluster, unique, per_master=1)
    queue, port = next(iter(names.items()))
    with Connection(url_of(cluster), transport_options={"socket_timeout": 0.3}) as conn:
        channel = conn.default_channel
        key = channel.keys.queue_key(queue, 0)
        assert channel.link.call_on(key, "LLEN", key) == 0
        assert {link._conn.socket_timeout for link in channel.link.links.values()} == {0.3}
        pid = cluster.node(port).proc.pid
        resume = threading.Timer(3.0, os.kill, (pid, signal.SIGCONT))  # if never raised
        os.kill(pid, signal.SIGSTOP)
        resume.start()
        try:
            with pytest.raises((rexc.TimeoutError, rexc.ConnectionError)):
                channel.link.call_on(key, "LLEN", key)
        finally:
            os.kill(pid, signal.SIGCONT)
            resume.cancel()
        Producer(conn).publish("after", routing_key=queue, declare=[Queue(queue)])
        assert channel.link.call_on(key, "LLEN", key) == 1
        message = Queue(queue)(channel).get()
        assert message is not None and message.payload == "after"
        message.ack()
    cluster.wait_ok()
    assert_no_records(cluster, [queue])
