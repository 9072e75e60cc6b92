"""Pidbox nodes served from a thread, and kombu 5.x pidbox scripts, for the pidbox tests."""

from __future__ import annotations

import socket
import threading
from typing import Any

__all__ = ["KOMBU5_CLIENT", "KOMBU5_NODE", "Kombu5Node", "NodeThread", "check_kombu5_client",
           "check_kombu5_node", "check_round_trip", "kombu5_client"]


class NodeThread:
    """A :class:`kombu.pidbox.Node` consuming on a connection of its own in a thread.

    ``with NodeThread(url, mailbox, 'node1', handlers) as node:`` the node is
    listening (its queue declared and bound) when the block starts and is
    stopped, within a bound, when it ends.  ``node.errors`` holds what the
    thread raised.
    """

    def __init__(self, url: str, mailbox: Any, hostname: str, handlers: dict[str, Any],
                 state: Any = None, **connection_options: Any) -> None:
        self.url = url
        self.mailbox = mailbox
        self.hostname = hostname
        self.handlers = handlers
        self.state = state
        self.connection_options = connection_options
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.node: Any = None
        self.thread = threading.Thread(target=self._run, name=f"pidbox-{hostname}", daemon=True)

    def _run(self) -> None:
        from kombu import Connection

        try:
            with Connection(self.url, **self.connection_options) as conn:
                bound = self.mailbox(conn)
                self.node = bound.Node(self.hostname, state=self.state, handlers=self.handlers,
                                       channel=conn.channel())
                consumer = self.node.listen()
                try:  # a transport may subscribe to fanout exchanges on the first drain
                    conn.drain_events(timeout=0.05)
                except socket.timeout:
                    pass
                self.ready.set()
                try:
                    while not self.stop.is_set():
                        try:
                            conn.drain_events(timeout=0.1)
                        except socket.timeout:
                            pass
                finally:
                    consumer.cancel()
        except BaseException as exc:  # noqa: BLE001  (reported to the test)
            self.errors.append(exc)
            self.ready.set()

    def __enter__(self) -> NodeThread:
        self.thread.start()
        if not self.ready.wait(15):
            self.stop.set()
            raise AssertionError(f"pidbox node {self.hostname} did not start within 15s")
        if self.errors:
            raise AssertionError(f"pidbox node {self.hostname} failed: {self.errors[0]!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), f"pidbox node {self.hostname} did not stop within 15s"


#: A kombu 5.x node: ``python -c KOMBU5_NODE url namespace type hostname seconds``.
#: Prints ``READY`` once listening; answers ``ping``, ``echo`` and ``add`` and
#: prints ``GOT <method> <json arguments> <clock header>`` for every command it
#: runs; exits after ``seconds`` or on the ``shutdown`` command.
KOMBU5_NODE = r"""
import json, socket, sys, time
from kombu import Connection
from kombu.pidbox import Mailbox
url, namespace, type_, hostname, seconds = sys.argv[1:6]
state = {"stop": False}
def ping(state_, **kw):
    return {"ok": "pong"}
def echo(state_, **kw):
    return kw
def add(state_, x, y):
    return x + y
def shutdown(state_):
    state["stop"] = True
    return "bye"
handlers = {"ping": ping, "echo": echo, "add": add, "shutdown": shutdown}
with Connection(url) as conn:
    mailbox = Mailbox(namespace, type=type_)(conn)
    node = mailbox.Node(hostname, handlers=handlers, channel=conn.channel())
    def on_message(body, message):
        print("GOT", body["method"], json.dumps(body["arguments"], sort_keys=True),
              message.headers.get("clock"), flush=True)
        node.handle_message(body, message)
    consumer = node.listen(callback=on_message)
    try:  # kombu's Redis transport subscribes to fanout exchanges on the first drain
        conn.drain_events(timeout=0.2)
    except socket.timeout:
        pass
    print("READY", flush=True)
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline and not state["stop"]:
        try:
            conn.drain_events(timeout=0.2)
        except socket.timeout:
            pass
    consumer.cancel()
print("DONE", flush=True)
"""

#: A kombu 5.x client: ``python -c KOMBU5_CLIENT url namespace type request-json``.
#: The request is ``{"op": "multi_call"|"call"|"cast"|"broadcast", ...}``;
#: prints ``RESULT <json>``.
KOMBU5_CLIENT = r"""
import json, sys
from kombu import Connection
from kombu.pidbox import Mailbox
url, namespace, type_, request = sys.argv[1:5]
request = json.loads(request)
with Connection(url) as conn:
    mailbox = Mailbox(namespace, type=type_)(conn)
    op = request.pop("op")
    if op == "multi_call":
        result = mailbox.multi_call(request["command"], request.get("kwargs"),
                                    timeout=request["timeout"], limit=request.get("limit"))
    elif op == "call":
        result = mailbox.call(request["destination"], request["command"],
                              request.get("kwargs"), timeout=request["timeout"])
    elif op == "broadcast":
        result = mailbox._broadcast(request["command"], request.get("kwargs"), reply=True,
                                    timeout=request["timeout"], limit=request.get("limit"),
                                    pattern=request.get("pattern"),
                                    matcher=request.get("matcher"))
    else:
        result = mailbox.cast(request["destination"], request["command"], request.get("kwargs"))
    print("RESULT", json.dumps(result, sort_keys=True), flush=True)
"""


class Kombu5Node:
    """Runs :data:`KOMBU5_NODE` under real kombu 5.x until the block ends.

    ``with Kombu5Node(python, url, namespace, 'fanout', 'k5@host') as node:``
    the node printed ``READY``; ``node.lines`` collects its output.  The
    process gets a ``shutdown`` or is killed when the block ends, within
    bounds.
    """

    def __init__(self, python: str, url: str, namespace: str, type_: str, hostname: str,
                 seconds: float = 60.0) -> None:
        self.argv = [python, "-c", KOMBU5_NODE, url, namespace, type_, hostname, str(seconds)]
        self.lines: list[str] = []
        self.proc: Any = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("READY"):
                self._ready.set()

    def __enter__(self) -> Kombu5Node:
        import subprocess

        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(30):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"kombu 5.x node did not start within 30s: {self.lines} {err}")
        return self

    def got(self) -> list[str]:
        """The ``GOT ...`` lines printed so far."""
        return [line for line in self.lines if line.startswith("GOT ")]

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit; return its exit code."""
        assert self.proc is not None
        code: int = self.proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(5)
        return code

    def __exit__(self, *exc_info: object) -> None:
        import subprocess

        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        if self._reader is not None:
            self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def kombu5_client(python: str, url: str, namespace: str, type_: str,
                  request: dict[str, Any]) -> Any:
    """Run :data:`KOMBU5_CLIENT` under real kombu 5.x; return its decoded result."""
    import json

    from helpers.processes import run

    proc = run([python, "-c", KOMBU5_CLIENT, url, namespace, type_, json.dumps(request)],
               timeout=60)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise AssertionError(f"kombu 5.x client printed no result: {proc.stdout!r} {proc.stderr!r}")


def check_round_trip(url: str, namespace: str, **connection_options: Any) -> None:
    """multi_call, call, cast, pattern/matcher and errors between this project's nodes."""
    from kombu import Connection
    from kombu.pidbox import Mailbox

    from helpers.processes import wait_until

    def ping(state: Any, **kwargs: Any) -> Any:
        return {"ok": "pong"}

    def add(state: Any, x: int, y: int) -> int:
        return x + y

    def record(state: Any, **kwargs: Any) -> str:
        state.append(kwargs)
        return "recorded"

    def boom(state: Any) -> None:
        raise ValueError("no")

    handlers = {"ping": ping, "add": add, "record": record, "boom": boom}
    mailbox = Mailbox(namespace, type="fanout")
    s1: list[Any] = []
    s2: list[Any] = []
    with NodeThread(url, mailbox, "w1@h", handlers, state=s1, **connection_options), \
            NodeThread(url, mailbox, "w2@h", handlers, state=s2, **connection_options), \
            Connection(url, **connection_options) as conn:
        bound = mailbox(conn)
        replies = bound.multi_call("ping", timeout=10, limit=2)
        assert sorted(replies, key=str) == [{"w1@h": {"ok": "pong"}}, {"w2@h": {"ok": "pong"}}]
        assert bound.call(["w2@h"], "add", {"x": 40, "y": 2}, timeout=10) == [{"w2@h": 42}]
        assert bound.call(["w1@h"], "boom", timeout=10) == [
            {"w1@h": {"error": "ValueError('no')"}}]
        # a second call through the same bound mailbox re-declares its reply queue
        assert bound.call(["w1@h"], "add", {"x": 1, "y": 1}, timeout=10) == [{"w1@h": 2}]
        assert bound._broadcast("ping", reply=True, timeout=2, pattern="w2*",
                                matcher="glob") == [{"w2@h": {"ok": "pong"}}]
        bound.cast(["w1@h"], "record", {"n": 1})
        bound.abcast("record", {"n": 2})
        wait_until(lambda: len(s1) == 2 and len(s2) == 1, timeout=10, message="casts arrived")
        assert s1 == [{"n": 1}, {"n": 2}] and s2 == [{"n": 2}]
        # a node that is not there: what arrived by the deadline
        assert bound.call(["w1@h", "missing@h"], "ping", timeout=1.0) == [
            {"w1@h": {"ok": "pong"}}]


def check_kombu5_node(python: str, url: str, namespace: str,
                      **connection_options: Any) -> None:
    """This project's Mailbox drives a real kombu 5.x Node."""
    from kombu import Connection
    from kombu.pidbox import Mailbox

    with Kombu5Node(python, url, namespace, "fanout", "k5@h") as node, \
            Connection(url, **connection_options) as conn:
        bound = Mailbox(namespace, type="fanout")(conn)
        bound.clock.value = 700
        assert bound.multi_call("ping", timeout=10, limit=1) == [{"k5@h": {"ok": "pong"}}]
        assert bound.call(["k5@h"], "add", {"x": 2, "y": 3}, timeout=10) == [{"k5@h": 5}]
        assert bound.call(["k5@h"], "echo", {"a": [1, "b"], "n": None}, timeout=10) == [
            {"k5@h": {"a": [1, "b"], "n": None}}]
        assert bound._broadcast("ping", reply=True, timeout=2, pattern="k5@*",
                                matcher="glob") == [{"k5@h": {"ok": "pong"}}]
        assert bound._broadcast("ping", reply=True, timeout=1, pattern="nobody*",
                                matcher="glob") == []
        # the node's reply clock moved ours past the value it saw
        assert bound.clock.value > 700
        bound.cast(["k5@h"], "echo", {"cast": True})
        assert bound.call(["k5@h"], "shutdown", timeout=10) == [{"k5@h": "bye"}]
        assert node.wait_exit() == 0
        got = node.got()
        methods = [line.split()[1] for line in got]
        # every command reaches the node's callback; the one for "nobody*" is not run
        assert methods == ["ping", "add", "echo", "ping", "ping", "echo", "shutdown"], got
        clocks = [int(line.split()[-1]) for line in got]
        assert clocks[0] > 700 and clocks == sorted(clocks)


def check_kombu5_client(python: str, url: str, namespace: str,
                        **connection_options: Any) -> None:
    """A real kombu 5.x Mailbox drives this project's Node."""
    from kombu.pidbox import Mailbox

    from helpers.processes import wait_until

    seen: list[Any] = []

    def ping(state: Any, **kwargs: Any) -> Any:
        return {"ok": "pong"}

    def add(state: Any, x: int, y: int) -> int:
        return x + y

    def record(state: Any, **kwargs: Any) -> str:
        state.append(kwargs)
        return "recorded"

    handlers = {"ping": ping, "add": add, "record": record}
    mailbox = Mailbox(namespace, type="fanout")
    with NodeThread(url, mailbox, "ours@h", handlers, state=seen, **connection_options):
        assert kombu5_client(python, url, namespace, "fanout", {
            "op": "multi_call", "command": "ping", "timeout": 10, "limit": 1,
        }) == [{"ours@h": {"ok": "pong"}}]
        assert kombu5_client(python, url, namespace, "fanout", {
            "op": "call", "destination": ["ours@h"], "command": "add",
            "kwargs": {"x": 5, "y": 6}, "timeout": 10,
        }) == [{"ours@h": 11}]
        assert kombu5_client(python, url, namespace, "fanout", {
            "op": "call", "destination": ["ours@h"], "command": "nope", "timeout": 10,
        }) == [{"ours@h": {"error": "KeyError('nope')"}}]
        assert kombu5_client(python, url, namespace, "fanout", {
            "op": "broadcast", "command": "ping", "timeout": 3, "pattern": "^ours@",
            "matcher": "pcre",
        }) == [{"ours@h": {"ok": "pong"}}]
        assert kombu5_client(python, url, namespace, "fanout", {
            "op": "cast", "destination": ["ours@h"], "command": "record",
            "kwargs": {"from": "kombu5"},
        }) is None
        wait_until(lambda: seen == [{"from": "kombu5"}], timeout=10, message="cast arrived")
        # our node's clock followed the kombu 5.x client's clock headers
        assert mailbox.clock.value >= 5
