"""An extra RabbitMQ node on free loopback ports, for tests that need a broker
configured differently from the shared one on 127.0.0.1:5672 (a TLS listener,
the EXTERNAL login method, ...).

The node has a name of its own (``kombu-test-<random>@localhost``), its own
AMQP, TLS and distribution ports on 127.0.0.1, and keeps its database, logs,
configuration and Erlang cookie in a temporary directory that :meth:`stop`
removes.  The shared node is never touched.  Starting takes a few seconds,
so tests share one node per module.

Distribution packages install ``rabbitmq-server`` as a wrapper that re-runs
the real script as the ``rabbitmq`` user; the real scripts next to it are
used instead, so that the node runs as the current user with the
environment given here.  ``KOMBU_TEST_RABBITMQ_SCRIPTS`` may name the
directory of the real scripts explicitly.

Usage::

    node = RabbitMQNode(tls=TLSFiles(ca, cert, key), plugins=["rabbitmq_auth_mechanism_ssl"])
    node.start()            # RabbitMQNodeError with the log's tail if it fails
    try:
        node.ctl("add_user", "name", "password")
        ...  # amqp://guest:guest@127.0.0.1:{node.port}//, amqps://...:{node.tls_port}//
    finally:
        node.stop()
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from helpers.sockets import free_port

__all__ = ["RabbitMQNode", "RabbitMQNodeError", "RabbitMQNodeUnavailable", "TLSFiles",
           "free_port", "scripts_dir"]

HOST = "127.0.0.1"

#: Environment variable naming the directory of the real RabbitMQ scripts.
SCRIPTS_ENV = "KOMBU_TEST_RABBITMQ_SCRIPTS"

#: Seconds allowed for one ``rabbitmqctl`` command.
CTL_TIMEOUT = 60.0


class RabbitMQNodeError(RuntimeError):
    """The node did not start or a command against it failed."""


class RabbitMQNodeUnavailable(RabbitMQNodeError):
    """RabbitMQ is not installed here (or its scripts cannot be found)."""


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of the node's TLS listener."""

    cacertfile: str
    certfile: str
    keyfile: str




def _is_real_server_script(path: Path) -> bool:
    # The real script sources rabbitmq-env; the package wrappers do not.
    try:
        return path.is_file() and "rabbitmq-env" in path.read_text(errors="replace")
    except OSError:
        return False


def scripts_dir() -> Path:
    """The directory holding the real ``rabbitmq-server`` and ``rabbitmqctl``.

    Raises :exc:`RabbitMQNodeUnavailable` when there is none.
    """
    explicit = os.environ.get(SCRIPTS_ENV)
    if explicit:
        candidate = Path(explicit)
        if _is_real_server_script(candidate / "rabbitmq-server"):
            return candidate
        raise RabbitMQNodeUnavailable(
            f"{SCRIPTS_ENV}={explicit} does not hold RabbitMQ's rabbitmq-server script")
    found = shutil.which("rabbitmq-server")
    if found is None:
        raise RabbitMQNodeUnavailable("rabbitmq-server is not installed (not on PATH)")
    path = Path(found)
    candidates = [path.parent, path.resolve().parent]
    try:
        text = path.read_text(errors="replace")
    except OSError:
        text = ""
    # A wrapper that runs "<dir>/${SCRIPT}" (Debian's) names the directory.
    candidates += [Path(match) for match in re.findall(r"(/[^\s\"'$]+)/\$\{?SCRIPT\}?", text)]
    for candidate in candidates:
        if _is_real_server_script(candidate / "rabbitmq-server"):
            return candidate
    raise RabbitMQNodeUnavailable(
        f"cannot find RabbitMQ's own rabbitmq-server script behind {found}; "
        f"set {SCRIPTS_ENV} to its directory")


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the server SIGTERM when the test process dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)``).  The server stops gracefully on
    SIGTERM, so a test run killed before its teardown leaves no node behind.
    The function is looked up here, not in the forked child.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

    return preexec


class RabbitMQNode:
    """A separate RabbitMQ node on loopback ports, started by :meth:`start`.

    ``tls``: the files of a TLS listener on :attr:`tls_port` (peer
    certificates are verified when sent, but not required).
    ``plugins``: plugins to enable (the management plugin is better left
    out: it opens more ports).  ``config``: extra ``rabbitmq.conf`` lines.
    """

    def __init__(self, *, tls: TLSFiles | None = None, plugins: Iterable[str] = (),
                 config: Sequence[str] = (), start_timeout: float = 60.0) -> None:
        self.name = f"kombu-test-{secrets.token_hex(4)}@localhost"
        self.tls = tls
        self.plugins = list(plugins)
        self.config = list(config)
        self.start_timeout = start_timeout
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.dist_port = free_port()
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._scripts: Path | None = None
        self._env: dict[str, str] = {}

    # -- paths and environment ------------------------------------------------
    @property
    def log_file(self) -> Path:
        assert self.dir is not None
        return self.dir / "log" / f"{self.name}.log"

    @property
    def output_file(self) -> Path:
        """What the server script printed (startup banner, early errors)."""
        assert self.dir is not None
        return self.dir / "server-output.txt"

    def _config_text(self) -> str:
        lines = [
            "loopback_users.guest = true",
            "log.file.level = info",
            "log.console = false",
        ]
        if self.tls is not None:
            lines += [
                f"listeners.ssl.default = {HOST}:{self.tls_port}",
                f"ssl_options.cacertfile = {self.tls.cacertfile}",
                f"ssl_options.certfile = {self.tls.certfile}",
                f"ssl_options.keyfile = {self.tls.keyfile}",
                "ssl_options.verify = verify_peer",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        return "\n".join([*lines, *self.config]) + "\n"

    def _prepare(self) -> None:
        self._scripts = scripts_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="kombu-rabbitmq-test-"))
        (self.dir / "log").mkdir()
        (self.dir / "mnesia").mkdir()
        (self.dir / "rabbitmq.conf").write_text(self._config_text())
        (self.dir / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        # An empty environment file, so that the system's (which may name
        # the shared node) is not read.
        (self.dir / "rabbitmq-env.conf").write_text("")
        # A cookie of its own: the node and the rabbitmqctl commands run with
        # HOME set to the temporary directory.
        cookie = self.dir / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        env = dict(os.environ)
        env.pop("RABBITMQ_DIST_PORT", None)
        env.update({
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            # Erlang distribution on the loopback interface only.
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        self._env = env

    # -- life cycle -------------------------------------------------------------
    def start(self) -> RabbitMQNode:
        """Start the node and wait until its listeners accept connections.

        Raises :exc:`RabbitMQNodeUnavailable` when RabbitMQ is not installed
        and :exc:`RabbitMQNodeError` (with the log's tail) when the node does
        not come up within ``start_timeout`` seconds.
        """
        self._prepare()
        assert self._scripts is not None and self.dir is not None
        env = dict(self._env, RABBITMQ_DIST_PORT=str(self.dist_port))
        try:
            with open(self.output_file, "wb") as output:
                # A session of its own: stop() signals the whole process group.
                self.proc = subprocess.Popen(
                    [str(self._scripts / "rabbitmq-server")], env=env, cwd=self.dir,
                    stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_parent_death_signal())
        except OSError as exc:
            self.stop()
            raise RabbitMQNodeError(f"cannot run rabbitmq-server: {exc}") from exc
        ports = [self.port] + ([self.tls_port] if self.tls_port else [])
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                message = f"RabbitMQ node {self.name} exited with status {code} while starting"
                break
            if all(self._accepts(port) for port in ports):
                return self
            if time.monotonic() >= deadline:
                message = (f"RabbitMQ node {self.name} did not accept connections on "
                           f"{HOST} ports {ports} within {self.start_timeout:g}s")
                break
            time.sleep(0.2)
        details = self.diagnostics()
        self.stop()
        raise RabbitMQNodeError(f"{message}\n{details}")

    @staticmethod
    def _accepts(port: int | None) -> bool:
        try:
            with socket.create_connection((HOST, port or 0), timeout=0.5):
                return True
        except OSError:
            return False

    def diagnostics(self, chars: int = 3000, errors: int = 15) -> str:
        """The first error lines and the tails of the server's output and log file.

        The first errors usually say what went wrong; crash reports follow.
        """
        parts = []
        for title, path in (("server output", self.output_file), ("log", self.log_file)):
            try:
                text = path.read_text(errors="replace")
            except OSError as exc:
                parts.append(f"--- {title}: {exc}")
                continue
            first = [line for line in text.splitlines() if "[error]" in line][:errors]
            if first:
                parts.append(f"--- {title} (first {len(first)} error lines)\n" + "\n".join(first))
            parts.append(f"--- {title} (last {chars} characters)\n{text[-chars:]}")
        return "\n".join(parts)

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n <this node> args...``; RabbitMQNodeError if it fails."""
        if self._scripts is None or self.proc is None:
            raise RabbitMQNodeError("the node is not started")
        argv = [str(self._scripts / "rabbitmqctl"), "-n", self.name, *args]
        try:
            proc = subprocess.run(argv, env=self._env, cwd=self.dir, timeout=timeout,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RabbitMQNodeError(
                f"rabbitmqctl {' '.join(args)} did not finish within {timeout:g}s") from None
        if proc.returncode != 0:
            raise RabbitMQNodeError(
                f"rabbitmqctl {' '.join(args)} exited with {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
        return proc

    def add_user(self, name: str, password: str | None = None, vhost: str = "/") -> str:
        """Create user ``name`` with full permissions on ``vhost``; return its password."""
        password = password or secrets.token_hex(12)
        self.ctl("add_user", name, password)
        self.ctl("set_permissions", "-p", vhost, name, ".*", ".*", ".*")
        return password

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node (SIGTERM, then SIGKILL) and remove its directory.

        ``rabbitmq-server`` in the foreground stops the node gracefully on
        SIGTERM, as ``rabbitmqctl stop`` would.  Safe to call twice.
        """
        proc, self.proc = self.proc, None
        if proc is not None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
                if proc.poll() is not None:
                    break
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> RabbitMQNode:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
