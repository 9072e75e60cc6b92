"""The plugin registers the Redis transports and stays light to import."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kombu import Connection
from kombu.transport import get_transport_cls


def test_plugin_module_does_not_import_redis_py() -> None:
    code = "import sys, kombu_redis.plugin; assert 'redis' not in sys.modules, 'redis imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_schemes_resolve_to_the_redis_transports() -> None:
    from kombu_redis.transport import SentinelTransport, Transport

    assert get_transport_cls("redis") is Transport
    assert get_transport_cls("rediss") is Transport
    assert get_transport_cls("sentinel") is SentinelTransport


def test_sentinel_without_master_name_says_what_to_do() -> None:
    conn = Connection("sentinel://127.0.0.1:1", transport_options={"max_retries": 0})
    with pytest.raises(ValueError, match="master_name"):
        conn.connect()
    conn.close()
