"""Pidbox nodes served from a thread, and kombu 5.x pidbox scripts, for the pidbox tests."""

from __future__ import annotations

import socket
import threading
from typing import Any

__all__ = ["KOMBU5_CLIENT", "KOMBU5_NODE", "NodeThread"]


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
