"""kombu 5.x import paths and names that kombu code and Celery use."""

from __future__ import annotations

import datetime
import decimal
import importlib
import urllib.parse
import uuid

import pytest
from kombu import Connection


@pytest.mark.parametrize(("module", "name"), [
    ("kombu.connection", "Resource"), ("kombu.connection", "PooledConnection"),
    ("kombu.connection", "ConnectionPool"), ("kombu.connection", "ChannelPool"),
    ("kombu.connection", "resolve_aliases"), ("kombu.connection", "retry_over_time"),
    ("kombu.connection", "HashedSeq"), ("kombu.connection", "ssl_available"),
    ("kombu.messaging", "PooledConnection"), ("kombu.pools", "Producer"),
    ("kombu.common", "get_gevent_concurrent_error"),
    ("kombu.exceptions", "BatchPublishError"),
    ("kombu.utils.json", "register_type"), ("kombu.utils.json", "dumps"),
    ("kombu.utils.json", "loads"), ("kombu.utils.json", "textual_types"),
    ("kombu.utils.json", "EncodedT"),
    ("kombu.utils.url", "_parse_url"), ("kombu.utils.url", "urlparse"),
    ("kombu.utils.url", "url_to_parts"), ("kombu.utils.url", "ssl_available"),
    ("kombu.utils.compat", "get_gevent_concurrent_error"), ("kombu.utils.compat", "reraise"),
    ("kombu.utils.imports", "reraise"),
    ("kombu.transport.virtual.base", "UNDELIVERABLE_FMT"),
    ("kombu.transport.virtual.base", "NOT_EQUIVALENT_FMT"),
    ("kombu.transport.virtual.base", "RESTORING_FMT"),
    ("kombu.transport.virtual.base", "RESTORE_PANIC_FMT"),
    ("kombu.transport.virtual.base", "W_NO_CONSUMERS"),
    ("kombu.transport.virtual.base", "ARRAY_TYPE_H"),
    ("kombu.transport.virtual.base", "emergency_dump_state"),
    ("kombu.transport.virtual.exchange", "escape_regex"),
])
def test_name_is_importable(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is not None


def test_unknown_names_still_raise_attribute_error() -> None:
    for module in ("kombu.connection", "kombu.utils.url", "kombu.utils.json",
                   "kombu.utils.compat", "kombu.utils.imports"):
        with pytest.raises(AttributeError, match="no_such_name"):
            importlib.import_module(module).no_such_name  # noqa: B018


def test_resource_and_pools_are_the_resource_modules() -> None:
    from kombu import resource
    from kombu.connection import ChannelPool, ConnectionPool, Resource

    assert Resource is resource.Resource
    assert ConnectionPool is resource.ConnectionPool and ChannelPool is resource.ChannelPool
    assert issubclass(ConnectionPool, Resource)


def test_pooled_connection() -> None:
    from kombu.connection import PooledConnection

    plain = Connection("memory://")
    pool = plain.Pool(limit=2)
    try:
        with pool.acquire() as conn:
            assert isinstance(conn, PooledConnection)
            assert isinstance(conn, Connection)
        assert not isinstance(plain, PooledConnection)
        by_hand = PooledConnection(pool, hostname="memory://")
        assert by_hand._pool is pool and isinstance(by_hand, PooledConnection)
        assert by_hand.clone()._pool is None  # a clone belongs to no pool
    finally:
        pool.force_close_all()


def test_parse_url_names() -> None:
    from kombu.utils.url import _parse_url, url_to_parts, urlparse, urlparts

    assert urlparse is urllib.parse.urlparse
    parts = _parse_url("redis://u:p%40ss@[::1]:6380/2?x=1")
    assert isinstance(parts, urlparts)
    assert parts == ("redis", "::1", 6380, "u", "p@ss", "2", {"x": "1"})
    assert parts == url_to_parts("redis://u:p%40ss@[::1]:6380/2?x=1")
    assert parts._fields == ("scheme", "hostname", "port", "username", "password", "path",
                             "query")


def test_json_default_types_round_trip() -> None:
    from kombu.utils.json import dumps, loads, register_type

    value = {
        "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
        "d": datetime.date(2024, 1, 2), "t": datetime.time(3, 4, 5, 6),
        "dec": decimal.Decimal("1.10"), "u": uuid.UUID(int=5), "b": b"\x00\xff",
    }
    assert loads(dumps(value)) == value

    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    register_type(Point, "dropin-point", lambda p: p.x, Point)
    assert loads(dumps({"p": Point(3)}))["p"].x == 3


def test_get_gevent_concurrent_error_without_gevent() -> None:
    import sys

    from kombu.utils.compat import get_gevent_concurrent_error

    if "gevent" not in sys.modules:
        assert get_gevent_concurrent_error() is None


def test_virtual_base_texts_format() -> None:
    from kombu.transport.virtual import base

    assert "'ex'" in base.UNDELIVERABLE_FMT.format(exchange="ex", routing_key="rk")
    assert "'v'" in base.NOT_EQUIVALENT_FMT.format("ex", "v")
    assert "3" in base.RESTORING_FMT.format(3)
    assert "q1" in base.W_NO_CONSUMERS % ("q1",)


# -- URLs: masking and as_uri ---------------------------------------------------
@pytest.mark.parametrize(("url", "expected"), [
    ("redis://a:p1@h1:6379/0;redis://b:p2@h2:6379/0",
     "redis://a:**@h1:6379/0;redis://b:**@h2:6379/0"),
    ("amqp://u:p@h1//; amqp://v:q@h2//", "amqp://u:**@h1//;amqp://v:**@h2//"),
    ("redis://:pa;ss@h:6379/0", "redis://:**@h:6379/0"),  # ';' inside a password
    ("amqp://u:p@h//", "amqp://u:**@h//"),
])
def test_maybe_sanitize_url_masks_every_alternate(url: str, expected: str) -> None:
    from kombu.utils.url import maybe_sanitize_url, sanitize_url

    assert maybe_sanitize_url(url) == expected
    assert sanitize_url(url) == expected
    for secret in ("p1", "p2", "pa;ss", ":q@"):
        assert secret not in expected


def test_as_uri_of_pyamqp_is_amqp() -> None:
    assert Connection("pyamqp://u:p@h//").as_uri() == "amqp://u:**@h:5672//"
    assert Connection("pyamqp://u:p@h//").as_uri(include_password=True) == \
        "amqp://u:p@h:5672//"
    assert Connection("amqp://u:p@h//").as_uri() == "amqp://u:**@h:5672//"
    # The printed URL resolves to the same transport.
    assert Connection(Connection("pyamqp://h//").as_uri()).transport_cls == "amqp"


def test_as_uri_of_alternates_masks_each() -> None:
    conn = Connection("redis://a:p1@h1:6379/0;redis://b:p2@h2:6379/0")
    assert conn.as_uri() == "redis://a:**@h1:6379/0"
    assert "p2" not in repr(conn) and "p1" not in repr(conn)
    assert conn.alt[1].endswith("h2:6379/0")
