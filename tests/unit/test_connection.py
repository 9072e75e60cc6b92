"""Connection: parameters, URLs, failover and retry policies on memory://."""

from __future__ import annotations

import copy
import pickle
import socket
import time
from typing import Any

import pytest
from kombu import BrokerConnection, Connection
from kombu.exceptions import AccessRefused, OperationalError
from kombu.transport import register, unregister
from kombu_memory.transport import Transport as MemoryTransport


class FlakyTransport(MemoryTransport):
    """memory:// that refuses hosts named in ``refuse`` (fault injection).

    A host ``deny`` raises AccessRefused (wrong credentials); the others in
    ``refuse`` raise ConnectionRefusedError, as a closed port would.
    """

    refuse: set[str] = set()
    attempts: list[tuple[str | None, float]] = []
    connection_errors = MemoryTransport.connection_errors + (OSError,)

    def establish_connection(self) -> Any:
        host = self.client.hostname
        FlakyTransport.attempts.append((host, time.monotonic()))
        if host == "deny":
            raise AccessRefused("ACCESS_REFUSED - login refused for user 'guest'")
        if host in FlakyTransport.refuse:
            raise ConnectionRefusedError(111, f"Connection refused: {host}")
        return super().establish_connection()


@pytest.fixture
def flaky() -> Any:
    register("flaky", FlakyTransport, replace=True)
    FlakyTransport.refuse = set()
    FlakyTransport.attempts = []
    yield FlakyTransport
    unregister("flaky")


def hosts(attempts: list[tuple[str | None, float]]) -> list[str | None]:
    return [h for h, _ in attempts]


def test_defaults_match_kombu() -> None:
    conn = Connection()
    assert conn.hostname == "localhost"
    assert conn.transport_cls == "amqp"
    assert conn.virtual_host == "/"
    assert conn.connect_timeout == 5
    assert conn.heartbeat == 0
    assert conn.ssl is False
    assert conn.transport_options == {}
    assert BrokerConnection is Connection


def test_url_and_parameters() -> None:
    conn = Connection("memory://user:s3cret@host:1234/vh?polling_interval=0.5")
    assert (conn.hostname, conn.port, conn.userid, conn.password, conn.virtual_host) == (
        "host", 1234, "user", "s3cret", "vh")
    assert conn.transport_options == {"polling_interval": 0.5}
    conn2 = Connection(hostname="localhost", userid="guest", password="guest",
                       virtual_host="/", transport="memory")
    assert conn2.transport_cls == "memory"
    assert type(conn2.transport).__module__ == "kombu_memory.transport"


def test_password_never_in_repr_or_uri() -> None:
    conn = Connection("memory://user:s3cret@host/")
    assert "s3cret" not in repr(conn)
    assert "s3cret" not in conn.as_uri()
    assert "s3cret" in conn.as_uri(include_password=True)
    assert repr(conn).startswith("<Connection: memory://user:**@host")


def test_transport_by_class_and_path() -> None:
    assert Connection(transport=MemoryTransport).get_transport_cls() is MemoryTransport
    conn = Connection(transport="kombu_memory.transport:Transport")
    assert conn.get_transport_cls() is MemoryTransport


def test_alternates_from_semicolons_lists_and_clone() -> None:
    conn = Connection("memory://a/;memory://b/")
    assert conn.alt == ["memory://a/", "memory://b/"]
    assert conn.hostname == "a"
    clone = conn.clone()
    assert clone.alt == conn.alt  # kombu #185 dropped them
    listed = Connection(["memory://a/", "memory://b/"])
    assert listed.alt == conn.alt


def test_pickle_and_copy_keep_settings() -> None:
    conn = Connection("memory://u:p@h:1/v;memory://h2/", transport_options={"x": 1},
                      heartbeat=5)
    for other in (pickle.loads(pickle.dumps(conn)), copy.copy(conn)):
        assert other.info() == conn.info()
        assert other is not conn


def test_connect_channel_close_and_reconnect() -> None:
    conn = Connection("memory://")
    assert not conn.connected
    assert conn.connect() is conn
    assert conn.connected
    channel = conn.channel()
    assert channel.connection is not None
    conn.close()
    assert not conn.connected
    assert conn.default_channel is not None  # connects again on demand
    assert conn.connected
    conn.release()


def test_context_manager_closes() -> None:
    with Connection("memory://") as conn:
        conn.connect()
        assert conn.connected
    assert not conn.connected


def test_supports_and_info() -> None:
    conn = Connection("memory://")
    assert conn.supports_exchange_type("topic")
    assert not conn.supports_exchange_type("x-delayed")
    assert not conn.supports_heartbeats
    assert not conn.is_evented
    assert conn.info()["transport"] == "memory"
    assert Connection("memory://h:1/").host == "h:1"


def test_failover_tries_next_host_without_sleeping(flaky: Any) -> None:
    flaky.refuse = {"a", "b"}
    conn = Connection("flaky://a/;flaky://b/;flaky://c/")
    start = time.monotonic()
    conn.ensure_connection(max_retries=5, interval_start=1)
    assert time.monotonic() - start < 0.5  # no interval between untried hosts
    assert hosts(flaky.attempts) == ["a", "b", "c"]
    assert conn.hostname == "c"


def test_max_retries_zero_is_one_attempt(flaky: Any) -> None:
    flaky.refuse = {"a"}
    conn = Connection("flaky://a/")
    with pytest.raises(OperationalError) as info:
        conn.ensure_connection(max_retries=0, interval_start=0.01)
    assert len(flaky.attempts) == 1
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_max_retries_counts_and_sleeps_between(flaky: Any) -> None:
    flaky.refuse = {"a"}
    calls: list[tuple[str, float]] = []
    conn = Connection("flaky://a/")
    with pytest.raises(OperationalError):
        conn.ensure_connection(errback=lambda exc, interval: calls.append((str(exc), interval)),
                               max_retries=3, interval_start=0.05, interval_step=0.05,
                               interval_max=0.1)
    assert len(flaky.attempts) == 4
    assert [i for _, i in calls] == [0.05, 0.1, 0.1]
    gaps = [b[1] - a[1] for a, b in zip(flaky.attempts, flaky.attempts[1:])]
    assert all(gap >= 0.04 for gap in gaps)


def test_timeout_bounds_unlimited_retries(flaky: Any) -> None:
    flaky.refuse = {"a"}
    conn = Connection("flaky://a/")
    start = time.monotonic()
    with pytest.raises(OperationalError):
        conn.ensure_connection(max_retries=None, interval_start=0.05, interval_step=0,
                               timeout=0.5)
    assert 0.3 < time.monotonic() - start < 2


def test_wrong_credentials_are_not_retried(flaky: Any) -> None:
    conn = Connection("flaky://deny/", password="hunter2")
    with pytest.raises(AccessRefused) as info:
        conn.ensure_connection(max_retries=5, interval_start=0.01)
    assert len(flaky.attempts) == 1
    assert "hunter2" not in str(info.value)


def test_default_channel_honours_transport_options(flaky: Any) -> None:
    flaky.refuse = {"a"}
    conn = Connection("flaky://a/", transport_options={
        "max_retries": 2, "interval_start": 0.01, "interval_step": 0})
    with pytest.raises(OperationalError):
        _ = conn.default_channel
    assert len(flaky.attempts) == 3


def test_ensure_reconnects_and_revives(flaky: Any) -> None:
    conn = Connection("flaky://a/;flaky://b/")
    conn.connect()
    revived: list[Any] = []

    class Obj:
        def revive(self, channel: Any) -> None:
            revived.append(channel)

    state = {"fail": 1}

    def op(x: int) -> int:
        if state["fail"]:
            state["fail"] -= 1
            flaky.refuse = {"a"}
            raise ConnectionRefusedError(104, "connection reset")
        return x * 2

    ensured = conn.ensure(Obj(), op, max_retries=3, interval_start=0.01)
    assert ensured(21) == 42
    assert len(revived) == 1
    assert conn.hostname == "b"


def test_ensure_gives_up_after_max_retries(flaky: Any) -> None:
    conn = Connection("flaky://a/")
    conn.connect()
    calls = []

    def op() -> None:
        calls.append(1)
        raise ConnectionResetError(104, "reset")

    class Obj:
        def revive(self, channel: Any) -> None:
            pass

    with pytest.raises(OperationalError):
        conn.ensure(Obj(), op, max_retries=2, interval_start=0.01)()
    assert len(calls) == 3


def test_autoretry_honours_max_retries_when_it_cannot_connect(flaky: Any) -> None:
    flaky.refuse = {"a"}
    conn = Connection("flaky://a/")

    def op(channel: Any = None) -> str:
        return "ok"

    start = time.monotonic()
    with pytest.raises(OperationalError):
        conn.autoretry(op, max_retries=2, interval_start=0.01)()
    assert time.monotonic() - start < 5
    assert 1 <= len(flaky.attempts) <= 6
    flaky.refuse = set()
    result, channel = conn.autoretry(op, max_retries=2, interval_start=0.01)()
    assert result == "ok" and channel is not None


def test_drain_events_timeout_on_memory() -> None:
    with Connection("memory://") as conn:
        conn.connect()
        start = time.monotonic()
        with pytest.raises(socket.timeout):
            conn.drain_events(timeout=0.2)
        assert time.monotonic() - start >= 0.15


def test_unknown_failover_strategy() -> None:
    with pytest.raises(ValueError, match="failover_strategy"):
        Connection("memory://", failover_strategy="nope")


def test_shuffle_strategy_visits_every_host() -> None:
    conn = Connection("memory://a/;memory://b/;memory://c/", failover_strategy="shuffle")
    seen = {next(conn.cycle) for _ in range(30)}
    assert seen == {"memory://a/", "memory://b/", "memory://c/"}
