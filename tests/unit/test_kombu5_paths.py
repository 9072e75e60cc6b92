"""kombu 5.x import paths and names that kombu code and Celery use."""

from __future__ import annotations

import datetime
import decimal
import importlib
import json
import urllib.parse
import uuid
from pathlib import Path

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
    ("kombu.utils.imports", "reraise"), ("kombu.message", "IS_PYPY"),
    ("kombu.serialization", "NOTSET"), ("kombu.serialization", "bytes_to_str"),
    ("kombu.serialization", "entrypoints"), ("kombu.serialization", "reraise"),
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
    for module in ("kombu.connection", "kombu.utils.url", "kombu.utils.json", "kombu.serialization",
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


# -- the walk over kombu 5.x's public names -----------------------------------
WALK_SCRIPT = r"""
import importlib, inspect, json, os, sys
import kombu
root = os.path.dirname(kombu.__file__)
modules = []
for sub, prefix in (("", "kombu"), ("utils", "kombu.utils"),
                    ("transport/virtual", "kombu.transport.virtual")):
    for name in sorted(os.listdir(os.path.join(root, sub))):
        if name.endswith(".py") and (name == "__init__.py" or not name.startswith("_")):
            stem = name[:-3]
            modules.append(prefix if stem == "__init__" else f"{prefix}.{stem}")
out = {}
for mod in modules:
    try:
        m = importlib.import_module(mod)
    except ImportError:
        continue
    names = set(getattr(m, "__all__", ()) or ())
    for name, value in vars(m).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        home = getattr(value, "__module__", None) or mod
        if isinstance(home, str) and home.startswith("kombu"):
            names.add(name)
    out[mod] = sorted(names)
json.dump(out, sys.stdout)
"""

NAMES_DOC = Path(__file__).resolve().parents[2] / "docs" / "kombu5-names.md"


def _doc_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in NAMES_DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`kombu") or cells[0] == "(several)":
            rows.append((cells[0].strip("`"), cells[1], cells[2]))
    return rows


def test_every_kombu5_public_name_is_here_or_documented() -> None:
    from helpers import run_python
    from helpers.kombu5 import kombu5_python

    walked = json.loads(run_python(WALK_SCRIPT, python=kombu5_python(), timeout=120).stdout)
    assert "kombu.connection" in walked and "kombu.utils.url" in walked
    rows = _doc_rows()
    undocumented = []
    for module, names in walked.items():
        try:
            ours = importlib.import_module(module)
        except ImportError:
            ours = None
        for name in names:
            if ours is not None and hasattr(ours, name):
                continue
            listed = [status for mod, cell, status in rows
                      if f"`{name}`" in cell and mod in (module, "(several)")]
            # A module kombu-core lacks as a whole is covered by its rows.
            listed += [status for mod, cell, status in rows
                       if mod == module and (cell == "(module)" or ours is None)]
            if not listed:
                undocumented.append(f"{module}.{name}")
            elif ours is not None and all(status == "added" for status in listed):
                undocumented.append(f"{module}.{name} (listed as added, but missing)")
    assert not undocumented, undocumented
