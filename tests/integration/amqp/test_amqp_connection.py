"""Connecting to RabbitMQ through the pyamqp transport: URLs, logins, heartbeats."""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
import uuid
from typing import Any, Callable

import amqp
import pytest
from helpers import wait_until
from kombu import Connection, Queue
from kombu.exceptions import AccessRefused, OperationalError, RecoverableConnectionError
from kombu.transport import get_transport_cls

pytestmark = pytest.mark.rabbitmq


def test_seed_connection_with_parameters(amqp_url: str) -> None:
    # The specification's example, verbatim.
    conn = Connection(
        hostname='localhost',
        userid='guest',
        password='guest',
        virtual_host='/',
        transport='pyamqp'
    )

    with conn:
        # Use connection
        channel = conn.channel()
        # ... perform operations
        assert channel.is_open
        assert conn.connected
    assert not conn.connected


def test_seed_parse_amqp_url() -> None:
    from kombu.utils.url import parse_url
    from kombu_pyamqp.transport import Transport

    parsed = parse_url('amqp://guest:guest@localhost:5672//')
    expected = {'hostname': 'localhost', 'port': 5672,
                'userid': 'guest', 'password': 'guest', 'virtual_host': '/'}
    assert {k: parsed[k] for k in expected} == expected
    # The specification prints 'pyamqp', kombu 5.x returns 'amqp': both name
    # this transport.
    assert parsed['transport'] in ('amqp', 'pyamqp')
    assert get_transport_cls(parsed['transport']) is Transport


def test_transport_names_resolve_to_this_plugin() -> None:
    from kombu_pyamqp.transport import SSLTransport, Transport

    assert get_transport_cls("pyamqp") is Transport
    assert get_transport_cls("amqp") is Transport
    assert get_transport_cls("amqps") is SSLTransport
    assert Connection("amqp://").transport.__class__ is Transport
    conn = Connection("amqps://")
    assert isinstance(conn.transport, SSLTransport)
    assert conn.ssl is True
    assert conn.transport.default_connection_params["port"] == 5671


def test_driver_information(amqp_url: str) -> None:
    conn = Connection(amqp_url)
    transport = conn.transport
    assert transport.driver_type == "amqp"
    assert transport.driver_name == "py-amqp"
    assert transport.driver_version() == amqp.__version__
    assert conn.supports_heartbeats and conn.is_evented
    for kind in ("direct", "topic", "fanout", "headers"):
        assert conn.supports_exchange_type(kind)
    params = transport.default_connection_params
    assert params == {"userid": "guest", "password": "guest", "port": 5672,
                      "hostname": "localhost", "login_method": "PLAIN"}
    # RabbitMQ >= 3.3 applies prefetch_count per consumer, not per channel.
    assert conn.qos_semantics_matches_spec is False
    conn.close()


def test_default_virtual_host_url_form(connect: Callable[..., Any]) -> None:
    conn = connect("amqp://guest:guest@127.0.0.1:5672//")
    assert conn.virtual_host == "/"
    conn.connect()
    assert conn.connection.virtual_host == "/"


def test_virtual_host_from_url(connect: Callable[..., Any], vhost: str,
                               names: Callable[[str], str]) -> None:
    name = names("q")
    conn = connect(f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    Queue(name, auto_delete=True)(conn.default_channel).declare()
    # The queue exists in that virtual host only.
    other = amqp.Connection("127.0.0.1:5672", virtual_host=vhost, connect_timeout=5)
    other.connect()
    try:
        assert other.channel().queue_declare(name, passive=True).queue == name
    finally:
        other.close()
    default = amqp.Connection("127.0.0.1:5672", connect_timeout=5)
    default.connect()
    try:
        with pytest.raises(amqp.exceptions.NotFound):
            default.channel().queue_declare(name, passive=True)
    finally:
        default.close()


@pytest.mark.parametrize("method", ["AMQPLAIN", "PLAIN"])
def test_login_methods(connect: Callable[..., Any], method: str) -> None:
    conn = connect(login_method=method)
    conn.connect()
    assert conn.connected
    assert conn.connection.authentication[0].mechanism.decode() == method


def test_login_method_the_broker_does_not_offer(connect: Callable[..., Any]) -> None:
    conn = connect(login_method="EXTERNAL")
    with pytest.raises(AccessRefused, match="EXTERNAL"):
        conn.ensure_connection(max_retries=3, interval_start=1)


def test_wrong_password_is_refused_at_once(amqp_url: str) -> None:
    conn = Connection("amqp://guest:not-the-password@127.0.0.1:5672//")
    started = time.monotonic()
    with pytest.raises(AccessRefused) as info:
        conn.ensure_connection(max_retries=None, interval_start=1, timeout=60)
    assert time.monotonic() - started < 5, "access refused must not be retried"
    text = str(info.value)
    assert "not-the-password" not in text
    assert "guest" in text and "password" in text
    assert not conn.connected
    # Everywhere a connection is made, not only ensure_connection.
    with pytest.raises(AccessRefused):
        conn.connect()
    with pytest.raises(AccessRefused):
        conn.default_channel  # noqa: B018
    assert isinstance(info.value, tuple(conn.connection_errors))
    assert not isinstance(info.value, tuple(conn.recoverable_connection_errors))


def test_unknown_virtual_host_says_so(amqp_url: str) -> None:
    conn = Connection("amqp://guest:guest@127.0.0.1:5672/no-such-vhost-kpa")
    started = time.monotonic()
    with pytest.raises(AccessRefused) as info:
        conn.ensure_connection(max_retries=5, interval_start=1)
    assert time.monotonic() - started < 5
    text = str(info.value)
    assert "'no-such-vhost-kpa'" in text and "does not exist" in text


def _vhost_url(vhost: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


def _refused_without_retry(url: str) -> AccessRefused:
    """The AccessRefused of ``ensure_connection`` to ``url``; fails if it was retried."""
    retried: list[BaseException] = []
    conn = Connection(url)
    with pytest.raises(AccessRefused) as info:
        conn.ensure_connection(errback=lambda exc, interval: retried.append(exc),
                               max_retries=3, interval_start=0.1)
    assert not retried, f"access refused must not be retried: {retried}"
    assert not conn.connected
    return info.value


def test_virtual_host_without_permissions_is_access_refused(bare_vhost: str) -> None:
    text = str(_refused_without_retry(_vhost_url(bare_vhost)))
    assert "grant permissions (rabbitmqctl set_permissions)" in text
    assert f"access to vhost '{bare_vhost}' refused for user 'guest'" in text  # the broker
    assert "limit" not in text and "does not exist" not in text


def test_deleted_virtual_host_is_not_found(rabbitmqctl: Callable[..., str]) -> None:
    name = f"kpa-vhost-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    finally:
        rabbitmqctl("delete_vhost", name)
    text = str(_refused_without_retry(_vhost_url(name)))
    assert f"The virtual host '{name}' does not exist" in text
    assert f"vhost {name} not found" in text  # the broker's words
    assert "permissions" not in text and "limit" not in text


def _limited_vhost(rabbitmqctl: Callable[..., str], vhost: str) -> str:
    """Let guest into ``vhost``, one connection at a time; return its URL."""
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    rabbitmqctl("set_vhost_limits", "-p", vhost, '{"max-connections": 1}')
    return _vhost_url(vhost)


def test_connection_limit_reached_is_a_recoverable_error(
        bare_vhost: str, rabbitmqctl: Callable[..., str], connect: Callable[..., Any]) -> None:
    url = _limited_vhost(rabbitmqctl, bare_vhost)
    connect(url).connect()
    second = connect(url)
    with pytest.raises(RecoverableConnectionError) as info:
        second.connect()
    error = info.value
    assert not isinstance(error, AccessRefused)
    assert isinstance(error, second.recoverable_connection_errors)
    text = str(error)
    assert "a limit is reached" in text and "set_vhost_limits" in text
    assert "connection limit (1) is reached" in text  # the broker's words
    assert "set_permissions" not in text
    assert isinstance(error.__cause__, amqp.exceptions.NotAllowed)
    assert not second.connected
    # Retries exhausted: ensure_connection's OperationalError, quoting the broker.
    with pytest.raises(OperationalError, match=r"connection limit \(1\) is reached"):
        second.ensure_connection(max_retries=1, interval_start=0.1)


def test_connection_limit_reached_is_retried_by_ensure_connection(
        bare_vhost: str, rabbitmqctl: Callable[..., str], connect: Callable[..., Any]) -> None:
    url = _limited_vhost(rabbitmqctl, bare_vhost)
    first = connect(url)
    first.connect()
    failures: list[BaseException] = []

    def errback(exc: BaseException, interval: float) -> None:
        failures.append(exc)
        first.release()  # the slot frees while ensure_connection waits

    second = connect(url)
    second.ensure_connection(errback=errback, max_retries=50, interval_start=0.1,
                             interval_step=0.1, interval_max=0.3)
    assert second.connected and not first.connected
    assert failures and all("connection limit (1) is reached" in str(exc) for exc in failures)
    assert second.default_channel.exchange_declare("amq.direct", "direct", passive=True) is None


def test_heartbeats_negotiated_and_checked(connect: Callable[..., Any]) -> None:
    conn = connect(heartbeat=2)
    conn.connect()
    assert conn.get_heartbeat_interval() == 2
    raw = conn.connection
    sent = raw.bytes_sent
    deadline = time.monotonic() + 5
    while raw.bytes_sent == sent:
        assert time.monotonic() < deadline, "no heartbeat was sent within 5s"
        conn.heartbeat_check(rate=2)
        try:
            conn.drain_events(timeout=0.2)
        except socket.timeout:
            pass
    assert conn.connected


def test_heartbeats_off_by_default(connect: Callable[..., Any]) -> None:
    conn = connect()
    conn.connect()
    assert conn.get_heartbeat_interval() == 0
    conn.heartbeat_check()  # nothing to do, must not raise


def test_heartbeat_from_url_query(connect: Callable[..., Any], amqp_url: str) -> None:
    conn = connect(amqp_url + "?heartbeat=4")
    conn.connect()
    assert conn.get_heartbeat_interval() == 4


def _connection_name(kind: str) -> str:
    return f"kpa-{kind}-{uuid.uuid4().hex[:10]}"


def _named(name: str) -> dict[str, Any]:
    """transport_options giving the connection a name the broker lists."""
    return {"client_properties": {"connection_name": name}}


def _broker_heartbeat(rabbitmqctl: Callable[..., str], name: str,
                      timeout: float = 10.0) -> int:
    """The heartbeat timeout the broker agreed for the connection called ``name``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = json.loads(rabbitmqctl("list_connections", "timeout", "client_properties",
                                      "--formatter", "json", "-q"))
        for row in rows:
            properties = {key: value for key, _kind, value in row["client_properties"]}
            if properties.get("connection_name") == name:
                return int(row["timeout"])
        assert time.monotonic() < deadline, f"the broker does not list connection {name}"
        time.sleep(0.2)


@pytest.mark.parametrize("heartbeat", [3, 0])
def test_broker_agrees_to_the_heartbeat(heartbeat: int, connect: Callable[..., Any],
                                        rabbitmqctl: Callable[..., str]) -> None:
    name = _connection_name(f"hb{heartbeat}")
    conn = connect(heartbeat=heartbeat, transport_options=_named(name))
    conn.connect()
    assert conn.get_heartbeat_interval() == heartbeat
    # RabbitMQ proposes 60 s: what it lists is what the client answered.
    assert _broker_heartbeat(rabbitmqctl, name) == heartbeat


def _drain_once(conn: Any, timeout: float = 0.1) -> None:
    try:
        conn.drain_events(timeout=timeout)
    except socket.timeout:
        pass


def test_heartbeats_keep_an_idle_connection_open(
        connect: Callable[..., Any], fault_proxy: Callable[[], Any],
        rabbitmqctl: Callable[..., str]) -> None:
    # Two idle connections with heartbeat=2: only one calls heartbeat_check.
    # The broker closes the other, so the idle time outlasted its timeout.
    proxy = fault_proxy()
    name = _connection_name("beating")
    beating = connect(proxy.url("amqp", "//"), heartbeat=2, transport_options=_named(name))
    silent = connect(heartbeat=2)
    beating.connect()
    silent.connect()
    raw = beating.connection
    bytes_before, frames_before = proxy.bytes_upstream, raw.bytes_sent
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "the broker kept a connection without heartbeats"
        beating.heartbeat_check(rate=2)
        _drain_once(beating)
        try:
            _drain_once(silent)
        except silent.connection_errors:
            break  # the broker closed it: missed heartbeats
    frames = raw.bytes_sent - frames_before  # the driver counts frames
    assert frames >= 2
    # Every frame the idle connection sent is an 8-byte heartbeat frame.
    wait_until(lambda: proxy.bytes_upstream - bytes_before == 8 * frames, timeout=5)
    assert beating.connected
    assert _broker_heartbeat(rabbitmqctl, name) == 2
    assert beating.default_channel.exchange_declare("amq.direct", "direct", passive=True) is None


def test_socket_options_from_transport_options(connect: Callable[..., Any]) -> None:
    # Values that differ from the driver's defaults (TCP_NODELAY 1,
    # TCP_KEEPIDLE 60 s, TCP_USER_TIMEOUT 1 s), read back from the socket.
    wanted = {socket.TCP_NODELAY: 0}
    for name, value in (("TCP_KEEPIDLE", 123), ("TCP_USER_TIMEOUT", 4321)):
        if hasattr(socket, name):
            wanted[getattr(socket, name)] = value
    conn = connect(transport_options={
        "read_timeout": 7,
        "write_timeout": 9.5,
        "socket_settings": wanted,
        "client_properties": {"connection_name": "kpa-options"},
    })
    conn.connect()
    raw = conn.connection
    sock = raw.sock
    for option, value in wanted.items():
        assert sock.getsockopt(socket.IPPROTO_TCP, option) == value, option
    assert len(wanted) == 3 or sys.platform != "linux"
    # read_timeout and write_timeout are the socket's SO_RCVTIMEO and SO_SNDTIMEO.
    timeval = struct.Struct("ll")
    assert timeval.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                          timeval.size)) == (7, 0)
    assert timeval.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                          timeval.size)) == (9, 500_000)
    assert raw.read_timeout == 7 and raw.write_timeout == 9.5
    assert raw.client_properties["connection_name"] == "kpa-options"
    # kombu's default client properties are kept next to ours.
    assert raw.client_properties["product"] == "py-amqp"


def test_client_properties_reach_the_broker(connect: Callable[..., Any],
                                            rabbitmqctl: Callable[..., str]) -> None:
    conn = connect(transport_options={"client_properties": {"connection_name": "kpa-client-42"}})
    conn.connect()
    deadline = time.monotonic() + 10
    while "kpa-client-42" not in rabbitmqctl("list_connections", "client_properties"):
        assert time.monotonic() < deadline, "the broker does not list our connection"
        time.sleep(0.2)


def test_connect_timeout_bounds_a_silent_broker(fault_proxy: Callable[[], Any]) -> None:
    proxy = fault_proxy()
    proxy.blackhole()
    conn = Connection(proxy.url("amqp", "//"), connect_timeout=1)
    started = time.monotonic()
    with pytest.raises((OperationalError, socket.timeout)):
        conn.ensure_connection(max_retries=0)
    assert time.monotonic() - started < 4
    assert not conn.connected


def test_missed_heartbeats_raise_a_recoverable_error(fault_proxy: Callable[[], Any]) -> None:
    proxy = fault_proxy()
    conn = Connection(proxy.url("amqp", "//"), heartbeat=1)
    try:
        conn.connect()
        proxy.blackhole()
        deadline = time.monotonic() + 8
        with pytest.raises(tuple(conn.recoverable_connection_errors)):
            while time.monotonic() < deadline:
                conn.heartbeat_check(rate=2)
                time.sleep(0.2)
    finally:
        conn.collect()


def test_close_is_bounded_when_the_broker_stops_answering(
        fault_proxy: Callable[[], Any]) -> None:
    proxy = fault_proxy()
    conn = Connection(proxy.url("amqp", "//"))
    conn.connect()
    conn.connection.close_timeout = 1
    proxy.blackhole()
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 4
    assert not conn.connected


def test_register_with_event_loop(connect: Callable[..., Any], names: Callable[[str], str]) -> None:
    class Loop:
        """The two event-loop calls a transport makes (kombu's Hub has them)."""

        def __init__(self) -> None:
            self.readers: dict[Any, tuple[Any, ...]] = {}
            self.soon: list[tuple[Any, ...]] = []

        def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:
            self.readers[fd] = (callback, *args)

        def call_soon(self, callback: Any, *args: Any) -> None:
            self.soon.append((callback, *args))

    conn = connect()
    queue = Queue(names("q"), auto_delete=True)
    got: list[Any] = []
    consumer = conn.Consumer(queue, callbacks=[lambda body, message: got.append(body)])
    consumer.consume()
    loop = Loop()
    conn.transport.register_with_event_loop(conn.connection, loop)
    assert list(loop.readers) == [conn.connection.sock]
    conn.Producer().publish("hello", routing_key=queue.name)
    callback, *args = loop.readers[conn.connection.sock]
    deadline = time.monotonic() + 5
    while not got:
        assert time.monotonic() < deadline
        callback(*args)
        while loop.soon:
            fn, *fargs = loop.soon.pop(0)
            fn(*fargs)
    assert got == ["hello"]
