"""kombu-pyamqp's pure logic, without a broker: queue arguments, connection
options built from a kombu Connection, TLS options and refused logins."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

pytest.importorskip("amqp", reason="kombu-pyamqp needs the amqp library (pip install amqp)")

from amqp.exceptions import NotAllowed
from kombu import Connection
from kombu.exceptions import AccessRefused, RecoverableConnectionError
from kombu_pyamqp.transport import Transport, to_rabbitmq_queue_arguments


def test_queue_options_become_rabbitmq_x_arguments() -> None:
    args = to_rabbitmq_queue_arguments({"x-queue-type": "quorum"}, expires=1.5,
                                       message_ttl=2, max_length="10",
                                       max_length_bytes=1024, max_priority=9)
    assert args == {"x-queue-type": "quorum", "x-expires": 1500, "x-message-ttl": 2000,
                    "x-max-length": 10, "x-max-length-bytes": 1024, "x-max-priority": 9}


def test_queue_options_that_are_none_leave_the_arguments_alone() -> None:
    given = {"x-dead-letter-exchange": "dlx"}
    assert to_rabbitmq_queue_arguments(given, expires=None, max_priority=None) is given
    assert to_rabbitmq_queue_arguments(None) is None
    assert to_rabbitmq_queue_arguments(None, max_length=0) == {"x-max-length": 0}
    with pytest.raises(KeyError):
        to_rabbitmq_queue_arguments(None, no_such_option=1)


def options(url: str, **kwargs: Any) -> dict[str, Any]:
    conn = Connection(url, **kwargs)
    transport = conn.transport
    assert isinstance(transport, Transport)
    return transport.connection_options()


def test_connection_options_from_a_url() -> None:
    opts = options("amqp://user:pa%3Ass@broker.example:5673/vh?heartbeat=10",
                   transport_options={"confirm_publish": True})
    assert opts == {
        "host": "broker.example:5673", "userid": "user", "password": "pa:ss",
        "login_method": "PLAIN", "virtual_host": "vh", "insist": False, "ssl": False,
        "connect_timeout": 5, "heartbeat": 10.0, "confirm_publish": True,
    }


def test_connection_defaults_localhost_and_ipv6() -> None:
    opts = options("amqp://")
    assert (opts["host"], opts["userid"], opts["password"], opts["virtual_host"]) == (
        "127.0.0.1:5672", "guest", "guest", "/")
    assert options("amqp://[::1]:5672//")["host"] == "[::1]:5672"
    assert options("amqp://h//", password=lambda: "fresh")["password"] == "fresh"


def test_amqps_uses_the_tls_port_and_checks_the_host_name() -> None:
    opts = options("amqps://broker.example//")
    assert opts["host"] == "broker.example:5671"
    assert opts["ssl"] == {"server_hostname": "broker.example"}


def test_tls_options_of_a_url_get_the_drivers_names() -> None:
    opts = options("amqp://h//?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required")
    assert opts["ssl"] == {"ca_certs": "/ca.pem", "cert_reqs": ssl.CERT_REQUIRED,
                           "server_hostname": "h"}
    unverified = options("amqp://h//?ssl_cert_reqs=none")["ssl"]
    assert unverified == {"cert_reqs": ssl.CERT_NONE}
    assert options("amqp://h//", ssl={"ssl_check_hostname": False})["ssl"] is True


def test_refused_virtual_host_errors() -> None:
    opts = {"virtual_host": "vh", "userid": "u"}
    limit = Transport._vhost_error("h:5672", opts, NotAllowed(
        "access to vhost 'vh' refused for user 'u': connection limit (1) is reached"))
    assert isinstance(limit, RecoverableConnectionError)
    missing = Transport._vhost_error("h:5672", opts, NotAllowed("vhost vh not found"))
    assert isinstance(missing, AccessRefused) and isinstance(missing, NotAllowed)
    assert "rabbitmqctl add_vhost" in str(missing)
    denied = Transport._vhost_error("h:5672", opts, NotAllowed("access refused"))
    assert isinstance(denied, AccessRefused) and "set_permissions" in str(denied)
