"""The public names kombu 5.x code imports keep working."""

from __future__ import annotations

import importlib

import kombu
import pytest


def test_top_level_names() -> None:
    from kombu import (  # noqa: F401
        BrokerConnection,
        Connection,
        Consumer,
        Exchange,
        Message,
        Producer,
        Queue,
        binding,
        eventloop,
        parse_url,
        pools,
        uuid,
    )

    assert BrokerConnection is Connection
    assert pools.connections is kombu.connections
    assert pools.producers is kombu.producers
    assert callable(eventloop) and callable(parse_url) and isinstance(uuid(), str)
    assert kombu.TRANSPORT_API == (1, 0)
    assert kombu.VERSION[:3] == (1, 0, 0)


def test_all_resolves() -> None:
    for name in kombu.__all__:
        assert getattr(kombu, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kombu.nope  # noqa: B018


@pytest.mark.parametrize(("module", "names"), [
    ("kombu.connection", ["Connection", "BrokerConnection", "ConnectionPool", "ChannelPool"]),
    ("kombu.pools", ["connections", "producers", "ProducerPool", "PoolGroup", "get_limit",
                     "set_limit", "reset", "use_global_limit"]),
    ("kombu.resource", ["Resource", "ConnectionPool", "ChannelPool"]),
    ("kombu.entity", ["Exchange", "Queue", "binding", "maybe_delivery_mode",
                      "PERSISTENT_DELIVERY_MODE", "TRANSIENT_DELIVERY_MODE"]),
    ("kombu.messaging", ["Producer", "Consumer"]),
    ("kombu.message", ["Message"]),
    ("kombu.simple", ["SimpleQueue", "SimpleBuffer"]),
    ("kombu.common", ["eventloop", "maybe_declare", "drain_consumer", "itermessages", "uuid",
                      "ignore_errors", "Broadcast", "send_reply", "collect_replies", "insured"]),
    ("kombu.serialization", ["dumps", "loads", "register", "unregister", "registry",
                             "enable_insecure_serializers", "disable_insecure_serializers",
                             "prepare_accept_content"]),
    ("kombu.compression", ["compress", "decompress", "register", "encoders"]),
    ("kombu.exceptions", ["KombuError", "OperationalError", "ContentDisallowed", "DecodeError",
                          "EncodeError", "MessageStateError", "LimitExceeded",
                          "ConnectionLimitExceeded", "ChannelLimitExceeded", "NotBoundError",
                          "SerializerNotInstalled", "ConnectionError", "ChannelError",
                          "InconsistencyError", "TimeoutError", "VersionMismatch", "HttpError",
                          "ResourceError", "reraise"]),
    ("kombu.utils.url", ["parse_url", "url_to_parts", "as_url", "sanitize_url",
                         "maybe_sanitize_url", "urlparts"]),
    ("kombu.utils.functional", ["retry_over_time", "maybe_list", "lazy", "ChannelPromise"]),
    ("kombu.utils.objects", ["cached_property"]),
    ("kombu.utils.json", ["dumps", "loads", "register_type"]),
    ("kombu.utils.encoding", ["bytes_to_str", "str_to_bytes", "safe_repr", "safe_str"]),
    ("kombu.transport", ["TRANSPORT_ALIASES", "get_transport_cls", "resolve_transport",
                         "symbol_by_name"]),
    ("kombu.transport.base", ["Transport", "StdChannel", "Management", "Implements",
                              "Message"]),
    ("kombu.transport.memory", ["Transport", "Channel"]),
    ("kombu.transport.virtual", ["Transport", "Channel", "QoS", "Message", "BrokerState",
                                 "AbstractChannel", "Base64", "Empty"]),
    ("kombu.log", ["get_logger", "LogMixin"]),
])
def test_kombu5_import_paths(module: str, names: list[str]) -> None:
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert missing == []


def test_kombu5_transport_module_paths_are_the_plugins() -> None:
    import kombu_memory.transport
    from kombu import Connection
    from kombu.message import Message
    from kombu.transport import base, memory

    assert memory.Transport is kombu_memory.transport.Transport
    assert base.Message is Message
    conn = Connection(transport="kombu.transport.memory:Transport")
    assert isinstance(conn.transport, kombu_memory.transport.Transport)
    assert Connection.resolve_aliases["pyamqp"] == "amqp"


def test_kombu5_transport_path_of_a_missing_plugin_says_what_to_install() -> None:
    from helpers.processes import run_python

    proc = run_python("""
import sys
sys.modules["kombu_redis"] = None  # as if kombu-redis were not installed
try:
    import kombu.transport.redis
except ImportError as exc:
    print(exc)
""")
    assert "pip install kombu-redis" in proc.stdout


def test_register_with_event_loop_reaches_the_transport() -> None:
    from kombu import Connection

    seen: list[object] = []
    conn = Connection("memory://")
    conn.transport.register_with_event_loop = (  # type: ignore[method-assign]
        lambda connection, loop: seen.append((connection, loop)))
    loop = object()
    conn.register_with_event_loop(loop)
    assert seen == [(conn.connection, loop)]
