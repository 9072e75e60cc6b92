"""A real Redis Cluster on loopback for the tests: six redis-server processes
(three masters, three replicas) on free ports, each in a temporary directory
of its own, created with ``redis-cli --cluster create``.

Every step is bounded; :meth:`LocalCluster.stop` stops every process and
removes every directory.  :func:`require_cluster_tools` skips the calling
test when redis-server or redis-cli is missing, and fails it under CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from helpers.brokers import under_ci

__all__ = ["ClusterNode", "LocalCluster", "TLSFiles", "names_on_every_master",
           "require_cluster_tools"]

HOST = "127.0.0.1"
#: Milliseconds a master may be unreachable before its replica takes over.
NODE_TIMEOUT_MS = 1000
#: Seconds allowed for the cluster to become healthy after a change.
STATE_TIMEOUT = 30.0


def require_cluster_tools() -> tuple[str, str]:
    """(redis-server, redis-cli) paths; skip (fail under CI) if either is missing."""
    import pytest

    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server and cli:
        return server, cli
    message = ("Redis Cluster tests need redis-server and redis-cli (Redis 7 or later) on "
               "PATH; install the Redis server package (e.g. `apt-get install redis-server`)")
    if under_ci():
        pytest.fail(f"{message} (required under CI=true)", pytrace=False)
    pytest.skip(message)


def _free_cluster_port(taken: set[int]) -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port in taken or port + 10000 > 65535:
            continue
        try:
            with socket.socket() as bus:
                bus.bind((HOST, port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair (port, port + 10000) on loopback")


def _command(port: int, *args: str, timeout: float = 2.0,
             tls: ssl.SSLContext | None = None) -> str:
    """One command over a raw socket (inline protocol; TLS with ``tls``); the reply
    as text."""
    with socket.create_connection((HOST, port), timeout=timeout) as raw, \
            (tls.wrap_socket(raw, server_hostname=HOST) if tls else raw) as sock:
        sock.sendall((" ".join(args) + "\r\n").encode())
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith((b"+", b"-", b":")) and data.endswith(b"\r\n"):
                break
            if data.startswith(b"$"):
                head, _, rest = data.partition(b"\r\n")
                if len(rest) >= int(head[1:]) + 2:
                    break
        return data.decode(errors="replace")


@dataclass
class ClusterNode:
    port: int
    dir: str
    proc: subprocess.Popen[bytes]
    killed: bool = False

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass
class TLSFiles:
    """PEM files for a TLS cluster: a CA, and the certificate and key of the servers
    (127.0.0.1), which they also use as clients of each other."""

    ca: str
    cert: str
    key: str

    def server_args(self) -> list[str]:
        return ["--tls-cluster", "yes", "--tls-replication", "yes",
                "--tls-cert-file", self.cert, "--tls-key-file", self.key,
                "--tls-ca-cert-file", self.ca, "--tls-auth-clients", "no"]

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)


@dataclass
class LocalCluster:
    """Six cluster-enabled redis-servers on loopback; :meth:`start`, then :meth:`stop`.

    With ``tls`` every node listens on TLS only (``--port 0``), and the
    cluster bus and replication use TLS too.
    """

    masters: int = 3
    replicas: int = 1
    nodes: list[ClusterNode] = field(default_factory=list)
    tls: TLSFiles | None = None
    #: More redis-server arguments for every node (``--cluster-require-full-coverage
    #: no``, say).
    server_args: tuple[str, ...] = ()

    def _cmd(self, port: int, *args: str) -> str:
        return _command(port, *args, tls=self.tls.context() if self.tls else None)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> LocalCluster:
        server, cli = require_cluster_tools()
        count = self.masters * (1 + self.replicas)
        taken: set[int] = set()
        try:
            for _ in range(count):
                port = _free_cluster_port(taken)
                taken.add(port)
                self.nodes.append(self._spawn(server, port))
            for node in self.nodes:
                self._wait_listening(node)
            proc = subprocess.run(
                [cli, *self._cli_tls(), "--cluster", "create", *(n.address for n in self.nodes),
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                capture_output=True, timeout=60, check=False)
            if proc.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed: "
                                   + proc.stdout.decode()[-2000:] + proc.stderr.decode()[-2000:])
            self.wait_ok()
            self.wait_synced()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, server: str, port: int, workdir: str | None = None) -> ClusterNode:
        workdir = workdir or tempfile.mkdtemp(prefix="kombu-redis-cluster-")
        proc = subprocess.Popen(
            [server, *(["--port", "0", "--tls-port", str(port), *self.tls.server_args()]
                       if self.tls else ["--port", str(port)]),
             "--bind", HOST, "--cluster-enabled", "yes",
             "--cluster-config-file", os.path.join(workdir, "nodes.conf"),
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
             "--repl-diskless-sync-delay", "0",
             "--dir", workdir, "--logfile", os.path.join(workdir, "redis.log"),
             *self.server_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return ClusterNode(port, workdir, proc)

    def _wait_listening(self, node: ClusterNode, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {node.port} exited: {self.log(node)}")
            try:
                if self._cmd(node.port, "PING").startswith("+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on {node.address} within {timeout}s")

    def stop(self) -> None:
        """Stop every process (terminate, then kill) and remove every directory."""
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            try:
                node.proc.wait(10)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(5)
            shutil.rmtree(node.dir, ignore_errors=True)
        self.nodes = []

    # -- state ---------------------------------------------------------------
    @property
    def live(self) -> list[ClusterNode]:
        return [n for n in self.nodes if not n.killed and n.proc.poll() is None]

    def _cli_tls(self) -> list[str]:
        return ["--tls", "--cacert", self.tls.ca] if self.tls else []

    def url(self, scheme: str = "rediscluster") -> str:
        """The broker URL with every live node as a seed (``;``-joined)."""
        return ";".join(f"{scheme}://{n.address}" for n in self.live)

    def info(self, node: ClusterNode) -> dict[str, str]:
        text = self._cmd(node.port, "CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def is_ok(self) -> bool:
        """Whether every live node reports ``cluster_state:ok`` and agrees on the masters."""
        try:
            return all(self.info(n).get("cluster_state") == "ok" for n in self.live) and \
                len(self.master_ports()) == self.masters
        except OSError:
            return False

    def wait_ok(self, timeout: float = STATE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_ok():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the cluster did not reach cluster_state:ok within {timeout}s")

    def wait_synced(self, timeout: float = STATE_TIMEOUT) -> None:
        """Wait until every replica finished its sync (it can take over then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                replies = [self._cmd(n.port, "INFO", "replication") for n in self.live]
            except OSError:
                replies = []
            replicas = [r for r in replies if "role:slave" in r]
            if replies and len(replicas) == len(self.live) - self.masters and all(
                    "master_link_status:up" in r and "master_sync_in_progress:0" in r
                    for r in replicas):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the replicas did not finish their sync within {timeout}s")

    def nodes_table(self, node: ClusterNode | None = None) -> list[list[str]]:
        """``CLUSTER NODES`` of ``node`` (any live one), one list of fields per node."""
        node = node or self.live[0]
        text = self._cmd(node.port, "CLUSTER", "NODES")
        return [line.split() for line in text.splitlines()[1:] if line.strip()]

    def master_ports(self) -> list[int]:
        """Ports of the masters that serve slots, as a live node sees them."""
        ports = []
        for fields in self.nodes_table():
            flags = fields[2].split(",")
            if "master" in flags and "fail" not in flags and "fail?" not in flags \
                    and len(fields) > 8:
                ports.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
        return sorted(ports)

    def node_ids(self) -> dict[int, str]:
        return {int(f[1].split("@")[0].rsplit(":", 1)[1]): f[0] for f in self.nodes_table()}

    def node(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def log(self, node: ClusterNode) -> str:
        try:
            with open(os.path.join(node.dir, "redis.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    # -- faults --------------------------------------------------------------
    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (it stays down; stop() reaps it)."""
        node = self.node(port)
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait(10)
        node.killed = True

    def revive(self, port: int) -> None:
        """Start the killed node on ``port`` again with its own config: it rejoins as
        a replica of the master that took over; waits until its sync finished."""
        server, _ = require_cluster_tools()
        node = self.node(port)
        fresh = self._spawn(server, port, node.dir)
        node.proc, node.killed = fresh.proc, False
        self._wait_listening(node)
        self.wait_ok()
        self.wait_synced()

    def wait_failover(self, dead_port: int, timeout: float = STATE_TIMEOUT) -> None:
        """Wait until a replica replaced the dead master and the cluster is ok."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if dead_port not in self.master_ports() and self.is_ok():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"no replica took over from {dead_port} within {timeout}s")

    def reshard(self, source: int, target: int, slots: int, timeout: float = 90.0) -> None:
        """Move ``slots`` slots from master ``source`` to master ``target`` (redis-cli)."""
        _, cli = require_cluster_tools()
        ids = self.node_ids()
        proc = subprocess.run(
            [cli, *self._cli_tls(), "--cluster", "reshard", self.node(target).address,
             "--cluster-from", ids[source], "--cluster-to", ids[target],
             "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "50"],
            capture_output=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError("redis-cli --cluster reshard failed: "
                               + proc.stdout.decode()[-2000:] + proc.stderr.decode()[-2000:])


def names_on_every_master(cluster: LocalCluster, make_name: Callable[[], str],
                          per_master: int) -> dict[str, int]:
    """Queue names from ``make_name()``, ``per_master`` on each master of
    ``cluster``: name -> the port of the master that serves it."""
    from redis.cluster import ClusterNode as Seed
    from redis.cluster import RedisCluster

    client = RedisCluster(startup_nodes=[Seed(HOST, n.port) for n in cluster.live])
    try:
        masters = len(cluster.master_ports())
        found: dict[str, int] = {}
        count: dict[int, int] = {}
        for _ in range(200 * per_master * masters):
            name = make_name()
            port = int(client.get_node_from_key("{" + name + "}").port)
            if count.get(port, 0) < per_master:
                count[port] = count.get(port, 0) + 1
                found[name] = port
            if len(found) == per_master * masters:
                return found
    finally:
        client.close()
    raise RuntimeError(f"could not find {per_master} queue name(s) on each of {masters} masters")
