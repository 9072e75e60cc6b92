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
    ("kombu.transport", ["TRANSPORT_ALIASES", "get_transport_cls", "resolve_transport"]),
    ("kombu.transport.base", ["Transport", "StdChannel", "Management", "Implements"]),
    ("kombu.transport.virtual", ["Transport", "Channel", "QoS", "Message", "BrokerState",
                                 "AbstractChannel", "Base64", "Empty"]),
    ("kombu.log", ["get_logger", "LogMixin"]),
])
def test_kombu5_import_paths(module: str, names: list[str]) -> None:
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert missing == []
