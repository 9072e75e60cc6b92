"""Compatibility with kombu 5.x's pyamqp transport: exception classes, error
tuples, QoS semantics and the smaller API details.

The comparisons with kombu 5.x run its real code in a subprocess (the
interpreter of ``helpers.kombu5.kombu5_python``).
"""

from __future__ import annotations

import importlib
import json
import re
import socket
import textwrap
from pathlib import Path
from typing import Any, Callable

import amqp
import kombu.exceptions
import pytest
from helpers import require
from helpers.kombu5 import kombu5_python
from helpers.processes import run, run_python
from kombu import Connection, Queue

# Loading the transport is what makes the driver's exceptions kombu's.
from kombu_pyamqp import transport as pyamqp_transport

pytestmark = pytest.mark.rabbitmq

URL = "amqp://guest:guest@127.0.0.1:5672//"
ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "plugins" / "kombu-pyamqp" / "README.md"
ERROR_ATTRIBUTES = ("connection_errors", "channel_errors", "recoverable_connection_errors",
                    "recoverable_channel_errors")
QOS_VERSIONS = {"3.2.0": True, "3.10.8": False, "4.0.5": True}


# -- exception classes -----------------------------------------------------------


def test_kombu_channel_error_catches_a_conflicting_redeclare(
        connect: Callable[..., Any], names: Callable[[str], str]) -> None:
    conn = connect()
    name = names("q")
    Queue(name, auto_delete=True, max_priority=5)(conn.default_channel).declare()
    caught: BaseException | None = None
    try:
        Queue(name, auto_delete=True, max_priority=9)(conn.channel()).declare()
    except kombu.exceptions.ChannelError as exc:
        caught = exc
    assert isinstance(caught, amqp.exceptions.PreconditionFailed)
    assert caught.reply_code == 406 and "x-max-priority" in str(caught)
    assert not isinstance(caught, kombu.exceptions.ConnectionError)
    # Only the channel died.
    assert conn.connected
    assert Queue(name)(conn.channel()).queue_declare(passive=True).queue == name


@pytest.mark.parametrize("cls", [
    amqp.exceptions.ConnectionForced, amqp.exceptions.NotAllowed,
    amqp.exceptions.UnexpectedFrame, amqp.exceptions.ResourceError,
    amqp.exceptions.RecoverableConnectionError, amqp.exceptions.FrameError,
])
def test_driver_connection_errors_are_kombu_connection_errors(cls: type[Exception]) -> None:
    error = cls("text", (10, 50))
    assert isinstance(error, kombu.exceptions.ConnectionError)
    assert isinstance(error, kombu.exceptions.KombuError)
    with pytest.raises(kombu.exceptions.ConnectionError):
        raise error
    # The driver's behaviour is unchanged.
    assert error.reply_text == "text" and error.reply_code == cls.code
    assert str(error) == f"Connection.close: ({cls.code}) text"
    assert not isinstance(error, kombu.exceptions.ChannelError)


@pytest.mark.parametrize("cls", [
    amqp.exceptions.PreconditionFailed, amqp.exceptions.NotFound,
    amqp.exceptions.AccessRefused, amqp.exceptions.ResourceLocked,
])
def test_driver_channel_errors_are_kombu_channel_errors(cls: type[Exception]) -> None:
    error = cls("text")
    assert isinstance(error, kombu.exceptions.ChannelError)
    assert not isinstance(error, kombu.exceptions.ConnectionError)


def test_driver_resource_error_is_a_recoverable_connection_error_only() -> None:
    error = amqp.exceptions.ResourceError("No free channel ids")
    conn = Connection(URL)
    assert isinstance(error, conn.connection_errors)
    assert isinstance(error, conn.recoverable_connection_errors)
    assert not isinstance(error, conn.channel_errors)
    assert not isinstance(error, conn.recoverable_channel_errors)
    assert not isinstance(error, kombu.exceptions.ChannelError)
    assert isinstance(error, kombu.exceptions.ResourceError)  # as in kombu 5.x


def test_exceptions_adopted_at_import_and_idempotent(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import importlib, sys
        import kombu, kombu.exceptions as k
        assert "amqp" not in sys.modules, "import kombu imported amqp"
        import amqp.exceptions as a
        assert not issubclass(a.PreconditionFailed, k.ChannelError)
        kombu.Connection("amqp://").transport  # loads kombu_pyamqp.transport
        pairs = [(a.ConnectionError, k.ConnectionError), (a.ChannelError, k.ChannelError),
                 (a.ResourceError, k.ResourceError)]
        for driver_cls, kombu_cls in pairs:
            assert driver_cls.__bases__[-1] is kombu_cls, driver_cls.__bases__
        assert not issubclass(a.ResourceError, k.ChannelError)
        assert issubclass(a.PreconditionFailed, k.ChannelError)
        assert issubclass(a.ConnectionForced, k.ConnectionError)
        before = [c.__bases__ for c, _ in pairs]
        import kombu_pyamqp.transport as t
        importlib.reload(t)
        t.adopt_kombu_exceptions()
        assert [c.__bases__ for c, _ in pairs] == before
        print("ok")
    """)
    proc = run_python(code, cwd=str(tmp_path), timeout=60)
    assert proc.stdout.strip() == "ok"


# -- the same as kombu 5.x -------------------------------------------------------

KOMBU5_SCRIPT = textwrap.dedent("""
    import json, sys
    from kombu import Connection
    from kombu.transport import pyamqp

    def names(classes):
        return sorted({f"{c.__module__}.{c.__qualname__}" for c in classes})

    class Conn:
        def __init__(self, version):
            self.server_properties = {"product": "RabbitMQ", "version": version}

    def membership(conn, error_cls):
        return [issubclass(error_cls, tuple(getattr(conn, a))) for a in attributes]

    def no_free_channel_id(conn):
        try:
            while True:
                conn.channel()
        except Exception as exc:
            return {"class": names([type(exc)])[0], "code": getattr(exc, "reply_code", None),
                    "membership": membership(conn, type(exc)), "connected": conn.connected}

    url, attributes, versions = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    classes = json.loads(sys.argv[4])
    conn = Connection(url)
    transport = conn.transport
    assert type(transport) is pyamqp.Transport, type(transport)
    out = {"errors": {a: names(getattr(pyamqp.Transport, a)) for a in attributes},
           "qos": {v: transport.qos_semantics_matches_spec(Conn(v)) for v in versions}}
    out["membership"] = {}
    for name in classes:
        module, _, qualname = name.rpartition(".")
        out["membership"][name] = membership(conn, getattr(__import__(
            module, fromlist=[qualname]), qualname))
    with conn:
        conn.connect()
        out["live_qos"] = conn.qos_semantics_matches_spec
        out["live_version"] = conn.connection.server_properties["version"]
    with Connection(url) as other:
        out["no_free_channel_id"] = no_free_channel_id(other)
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def kombu5_facts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What kombu 5.x's pyamqp transport says (error tuples, QoS semantics)."""
    require("rabbitmq")
    cwd = tmp_path_factory.mktemp("kombu5")
    proc = run([kombu5_python(), "-c", KOMBU5_SCRIPT, URL, json.dumps(ERROR_ATTRIBUTES),
                json.dumps(list(QOS_VERSIONS)), json.dumps(_classified_names())],
               env={"PYTHONPATH": ""}, cwd=str(cwd), timeout=60)
    facts: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return facts


def _classified_names() -> list[str]:
    """Every exception class of the driver, and the socket errors, by qualified name."""
    driver = [f"amqp.exceptions.{name}" for name in amqp.exceptions.__all__
              if isinstance(getattr(amqp.exceptions, name), type)]
    return [*driver, "builtins.OSError", "builtins.TimeoutError",
            "builtins.ConnectionResetError", "socket.timeout"]


def _resolve(name: str) -> type[BaseException]:
    module, _, qualname = name.rpartition(".")
    cls: type[BaseException] = getattr(importlib.import_module(module), qualname)
    return cls


def _membership(conn: Connection, cls: type[BaseException]) -> list[bool]:
    """Whether ``cls`` is in each of the connection's error tuples."""
    return [issubclass(cls, tuple(getattr(conn, a))) for a in ERROR_ATTRIBUTES]


def _qualified(classes: Any) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in classes}


def _documented_additions() -> dict[str, set[str]]:
    """The README's table of error classes added to kombu 5.x's tuples."""
    rows: dict[str, set[str]] = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\|\s*`(\w+_errors)`\s*\|[^|]*\|([^|]*)\|\s*$", line)
        if match:
            rows[match.group(1)] = set(re.findall(r"`([\w.]+)`", match.group(2)))
    assert set(rows) == set(ERROR_ATTRIBUTES), f"the README documents {sorted(rows)}"
    return rows


def test_error_tuples_match_kombu5_plus_documented_additions(
        kombu5_facts: dict[str, Any]) -> None:
    additions = _documented_additions()
    for attribute in ERROR_ATTRIBUTES:
        ours = _qualified(getattr(pyamqp_transport.Transport, attribute))
        theirs = set(kombu5_facts["errors"][attribute])
        assert theirs <= ours, f"{attribute}: kombu 5.x has {sorted(theirs - ours)} too"
        assert ours - theirs == additions[attribute], (
            f"{attribute}: undocumented difference {sorted(ours - theirs)}")
        # What the kombu Connection hands out is the transport's.
        assert _qualified(getattr(Connection("amqp://"), attribute)) == ours


def test_every_driver_error_is_classified_as_in_kombu5(kombu5_facts: dict[str, Any]) -> None:
    conn = Connection(URL)
    theirs = kombu5_facts["membership"]
    assert "amqp.exceptions.ResourceError" in theirs
    differ = {name: (_membership(conn, _resolve(name)), expected)
              for name, expected in theirs.items()
              if _membership(conn, _resolve(name)) != expected}
    assert not differ, f"(ours, kombu 5.x) membership of {ERROR_ATTRIBUTES}: {differ}"


def test_no_free_channel_id_is_classified_as_in_kombu5(kombu5_facts: dict[str, Any],
                                                        connect: Callable[..., Any]) -> None:
    conn = connect()
    conn.connect()
    channels: list[Any] = []
    with pytest.raises(Exception) as info:  # the class is compared below
        for _ in range(70_000):
            channels.append(conn.channel())
    error = info.value
    theirs = kombu5_facts["no_free_channel_id"]
    assert _qualified([type(error)]) == {theirs["class"]} == {"amqp.exceptions.ResourceError"}
    assert error.reply_code == theirs["code"] == 506
    assert _membership(conn, type(error)) == theirs["membership"] == [True, False, True, False]
    assert not isinstance(error, conn.channel_errors)
    # A client-side error: the connection still works.
    assert conn.connected and theirs["connected"]
    channels.pop().close()
    assert conn.channel().exchange_declare("amq.direct", "direct", passive=True) is None


@pytest.mark.parametrize(("version", "expected"), sorted(QOS_VERSIONS.items()))
def test_qos_semantics_by_rabbitmq_version(version: str, expected: bool,
                                           kombu5_facts: dict[str, Any]) -> None:
    conn = pyamqp_transport.Connection(host="127.0.0.1:5672")  # never connected
    conn.server_properties = {"product": "RabbitMQ", "version": version}
    transport = pyamqp_transport.Transport(Connection("amqp://"))
    assert transport.qos_semantics_matches_spec(conn) is expected
    assert kombu5_facts["qos"][version] is expected
    # Other brokers, and RabbitMQ without a version, follow the specification.
    conn.server_properties = {"product": "RabbitMQ"}
    assert transport.qos_semantics_matches_spec(conn) is True
    conn.server_properties = {"product": "other", "version": "3.10.8"}
    assert transport.qos_semantics_matches_spec(conn) is True


def test_qos_semantics_of_the_live_broker(connect: Callable[..., Any],
                                          kombu5_facts: dict[str, Any]) -> None:
    conn = connect()
    conn.connect()
    version = conn.connection.server_properties["version"]
    assert version == kombu5_facts["live_version"]
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    expected = major_minor < (3, 3) or major_minor >= (4, 0)
    assert conn.qos_semantics_matches_spec is expected
    assert kombu5_facts["live_qos"] is expected


def test_drain_events_ignores_extra_keyword_arguments(connect: Callable[..., Any]) -> None:
    conn = connect()
    conn.connect()
    with pytest.raises(socket.timeout):
        conn.drain_events(timeout=0.1, callback=None, some_future_option=1)
    assert conn.connected


def test_heartbeat_check_returns_what_the_driver_returns(connect: Callable[..., Any]) -> None:
    conn = connect(heartbeat=10)
    conn.connect()
    raw = conn.connection
    sentinel = object()
    rates: list[float] = []
    driver_tick = raw.heartbeat_tick

    def tick(rate: float = 2) -> Any:
        rates.append(rate)
        driver_tick(rate=rate)
        return sentinel

    raw.heartbeat_tick = tick
    assert conn.heartbeat_check(rate=3) is sentinel
    assert rates == [3]


def test_get_manager_is_the_base_management(connect: Callable[..., Any]) -> None:
    conn = connect()
    manager = conn.get_manager()
    assert type(manager).__module__ == "kombu.transport.base"
    with pytest.raises(NotImplementedError):
        manager.get_bindings()


def test_localhost_dialled_as_loopback_but_not_rewritten(connect: Callable[..., Any]) -> None:
    conn = connect("amqp://guest:guest@localhost:5672//")
    conn.connect()
    assert conn.connection.sock.getpeername()[0] == "127.0.0.1"
    assert conn.hostname == "localhost"
    assert "@localhost:5672" in conn.as_uri()

