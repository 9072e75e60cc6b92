"""Host lists and failover strategies (kombu.failover), without a broker."""

from __future__ import annotations

from itertools import islice
from typing import Any

import pytest
from kombu.failover import (
    check_alternates,
    completes_round,
    failover_strategies,
    get_failover_strategy,
    shufflecycle,
    split_host_port,
    split_hosts,
    with_primary,
)


def test_split_hosts_forms() -> None:
    assert split_hosts("redis://a/0", None) == ("redis://a/0", [], True)
    assert split_hosts("redis://a/0", ["redis://b/0"]) == ("redis://a/0", ["redis://b/0"], True)
    assert split_hosts("redis://a/0; redis://b/0", ["redis://c/0"]) == (
        "redis://a/0", ["redis://a/0", "redis://b/0", "redis://c/0"], False)
    assert split_hosts(["amqp://x//", "amqp://y//"], None) == (
        "amqp://x//", ["amqp://x//", "amqp://y//"], False)
    assert split_hosts(None, None) == (None, [], False)
    with pytest.raises(ValueError, match="empty list of hosts"):
        split_hosts([], None)


def test_with_primary_inserts_the_primary_once() -> None:
    assert with_primary(["redis://b/0"], "redis://a/0", None, None) == [
        "redis://a/0", "redis://b/0"]
    assert with_primary(["redis://a/0", "redis://b/0"], "redis://a/0", None, None) == [
        "redis://a/0", "redis://b/0"]
    # a bare host name (as clone() passes it) matches the URL of that host and port
    assert with_primary(["amqp://h:5672//", "amqp://b//"], "h", 5672, None) == [
        "amqp://h:5672//", "amqp://b//"]
    assert with_primary(["amqp://h:5673//"], "h", 5672, None) == ["h", "amqp://h:5673//"]
    assert with_primary(["sqla+sqlite:///x"], "sqlite:///x", None, "sqla") == ["sqla+sqlite:///x"]
    assert with_primary([], "redis://a/0", None, None) == []


def test_check_alternates_raises_the_parse_error_now() -> None:
    check_alternates(["redis://a/0", "sqla+postgresql://u@h/db", "plainhost"])
    with pytest.raises(ValueError, match="port"):
        check_alternates(["redis://a/0", "redis://b:notaport/0"])


def test_completes_round() -> None:
    assert [completes_round(i, 3) for i in range(6)] == [False, False, True] * 2
    assert completes_round(0, 0) and completes_round(5, 1)


def test_split_host_port() -> None:
    params: dict[str, Any] = {"hostname": "broker:5673", "port": None}
    split_host_port(params)
    assert params == {"hostname": "broker", "port": 5673}
    params = {"hostname": "broker:5673", "port": 1}
    split_host_port(params)
    assert params == {"hostname": "broker", "port": 1}
    params = {"hostname": "::1", "port": None}
    split_host_port(params)
    assert params == {"hostname": "::1", "port": None}
    with pytest.raises(ValueError, match="port number"):
        split_host_port({"hostname": "broker:x", "port": None})
    with pytest.raises(ValueError, match=r"\.\.\.@h") as info:
        split_host_port({"hostname": "user:secret@h", "port": None})
    assert "secret" not in str(info.value)


def test_strategies() -> None:
    hosts = ["a", "b", "c", "d"]
    assert list(islice(get_failover_strategy("round-robin")(hosts), 6)) == [
        "a", "b", "c", "d", "a", "b"]
    assert get_failover_strategy(None) is failover_strategies["round-robin"]
    shuffled = list(islice(shufflecycle(hosts), 8))
    assert shuffled[0] == "a" and sorted(shuffled[:4]) == hosts and shuffled[4:] == shuffled[:4]
    custom = get_failover_strategy(reversed)
    assert custom is reversed
    with pytest.raises(ValueError, match="'round-robin', 'shuffle'"):
        get_failover_strategy("random")
    assert get_failover_strategy("mine", {"mine": iter}) is iter
