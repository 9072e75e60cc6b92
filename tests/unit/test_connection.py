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
    #: The connect timeout each attempt was given.
    timeouts: list[float] = []
    connection_errors = MemoryTransport.connection_errors + (OSError,)

    def establish_connection(self) -> Any:
        host = self.client.hostname
        FlakyTransport.attempts.append((host, time.monotonic()))
        FlakyTransport.timeouts.append(self.client.connect_timeout)
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
    FlakyTransport.timeouts = []
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
    assert hosts(flaky.attempts) == ["a"] * 3  # the first try and two retries
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


def test_shuffle_tries_every_host_once_per_round(flaky: Any) -> None:
    """kombu's shuffle drew hosts at random, so a round could miss the live one."""
    names = ["a", "b", "c", "d"]
    for live in names * 10:
        flaky.refuse = set(names) - {live}
        flaky.attempts = []
        conn = Connection(";".join(f"flaky://{h}/" for h in names), failover_strategy="shuffle")
        conn.ensure_connection(max_retries=len(names) - 1, interval_start=0)
        tried = hosts(flaky.attempts)
        assert tried[0] == "a" and tried[-1] == live == conn.hostname
        assert len(tried) == len(set(tried))
    flaky.refuse = set(names)
    flaky.attempts = []
    conn = Connection(";".join(f"flaky://{h}/" for h in names), failover_strategy="shuffle")
    with pytest.raises(OperationalError):
        conn.ensure_connection(max_retries=3 * len(names) - 1, interval_start=0)
    tried = hosts(flaky.attempts)
    # Every run of len(names) attempts, from wherever it starts, reaches every host.
    assert len(tried) == 3 * len(names)
    assert all(sorted(tried[i:i + len(names)]) == names for i in range(len(tried) - len(names)))


def test_an_overall_timeout_caps_the_connect_timeout_of_each_attempt(flaky: Any) -> None:
    flaky.refuse = {"a"}
    conn = Connection("flaky://a/", connect_timeout=5)
    with pytest.raises(OperationalError):
        conn.ensure_connection(timeout=0.5, interval_start=0.1, interval_step=0)
    assert len(flaky.timeouts) >= 2
    assert all(0 < t <= 0.5 for t in flaky.timeouts)
    assert flaky.timeouts == sorted(flaky.timeouts, reverse=True)  # what is left shrinks
    assert conn.connect_timeout == 5  # restored after the attempt
    flaky.timeouts.clear()
    with pytest.raises(OperationalError):
        conn.ensure_connection(max_retries=1, interval_start=0)
    assert flaky.timeouts == [5, 5]  # no overall timeout: each host gets its own


def test_a_pooled_connection_closed_by_its_user_is_usable_by_the_next() -> None:
    pool = Connection("memory://").Pool(1)
    conn = pool.acquire()
    conn.connect()
    conn.close()  # closes it and gives it back
    again = pool.acquire(block=True, timeout=1)
    assert again is conn and not again.connected
    channel = again.channel()  # kombu: AttributeError, the connection stayed closed
    assert channel is not None and again.connected
    again.release()


def test_a_pooled_connection_that_fails_over_keeps_its_slot(flaky: Any) -> None:
    flaky.refuse = {"a"}
    pool = Connection("flaky://a/", alternates=["flaky://b/"]).Pool(2)
    conn = pool.acquire()
    conn.connect()  # a refused: switched to b (kombu-core once gave the slot back here)
    assert conn.hostname == "b" and conn in pool._dirty
    assert pool.acquire() is not conn


def test_the_primary_joins_the_rotation_once_whatever_its_form(flaky: Any) -> None:
    by_port = Connection(hostname="127.0.0.1", port=5672, transport="flaky",
                         alternates=["flaky://127.0.0.1:1/"])
    assert by_port.alt == ["127.0.0.1", "flaky://127.0.0.1:1/"]  # another port: another host
    split = Connection(hostname="127.0.0.1:5672", transport="flaky",
                       alternates=["flaky://b/"])
    assert split.alt == ["127.0.0.1", "flaky://b/"] and split.port == 5672
    split.maybe_switch_next()
    split.maybe_switch_next()
    assert (split.hostname, split.port) == ("127.0.0.1", 5672)
    for conn in (Connection("memory://", alternates=["memory://b/"]),
                 Connection("flaky://a/", alternates=["flaky://b/"])):
        for other in (conn.clone(), pickle.loads(pickle.dumps(conn)), copy.copy(conn)):
            assert other.alt == conn.alt, other.alt


def test_ensure_retries_a_connect_timeout_inside_fun(flaky: Any) -> None:
    """Only a timeout on a live connection means "nothing to do"."""
    class TimingOut(FlakyTransport):
        def establish_connection(self) -> Any:
            if self.client.hostname == "silent":
                FlakyTransport.attempts.append(("silent", time.monotonic()))
                raise socket.timeout("timed out connecting")
            return super().establish_connection()

        connection_errors = FlakyTransport.connection_errors + (socket.timeout,)

    register("timingout", TimingOut, replace=True)
    try:
        conn = Connection("timingout://silent/", transport_options={"max_retries": 0})
        errors: list[Any] = []
        drain = conn.ensure(conn, conn.drain_events, max_retries=2,
                            errback=lambda exc, interval: errors.append(exc))
        with pytest.raises(OperationalError):  # not an idle socket.timeout
            drain(timeout=0.05)
        assert len(errors) >= 2
        live = Connection("timingout://silent/;timingout://live/")
        drain = live.ensure(live, live.drain_events, max_retries=2)
        with pytest.raises(socket.timeout):
            drain(timeout=0.05)  # connected to live: then a plain idle timeout
        assert live.hostname == "live"
    finally:
        unregister("timingout")


def test_alternates_keyword_keeps_the_primary_in_the_rotation(flaky: Any) -> None:
    flaky.refuse = {"a"}
    conn = Connection("flaky://a/", alternates=["flaky://b/", "flaky://c/"])
    conn.connect()
    assert hosts(flaky.attempts) == ["a", "b"] and conn.hostname == "b"
    assert conn.alt == ["flaky://a/", "flaky://b/", "flaky://c/"]
    conn.maybe_switch_next()
    conn.maybe_switch_next()
    assert conn.hostname == "a"  # back to the primary (kombu never returned to it)
    listed = Connection("flaky://a/", alternates=["flaky://a/", "flaky://b/"])
    assert listed.alt == ["flaky://a/", "flaky://b/"]


# -- failover after a drop, URL query values, host names -------------------------

def test_ensure_fails_over_a_dropped_connection_with_one_retry(flaky: Any) -> None:
    """kombu #2330: with max_retries=1 the retry goes to the live alternate."""
    conn = Connection("flaky://a/;flaky://b/")
    conn.connect()
    assert conn.hostname == "a"
    state = {"dropped": False}

    def op() -> str:
        if not state["dropped"]:
            state["dropped"] = True
            flaky.refuse = {"a"}  # a is gone for good
            raise ConnectionResetError(104, "connection reset by a")
        return str(conn.hostname)

    class Obj:
        def revive(self, channel: Any) -> None:
            pass

    assert conn.ensure(Obj(), op, max_retries=1, interval_start=0.01)() == "b"
    assert hosts(flaky.attempts)[-1] == "b" and "a" not in hosts(flaky.attempts)[1:]


def test_ensure_calls_on_revive_and_retries_retry_errors(flaky: Any) -> None:
    conn = Connection("flaky://a/")
    conn.connect()
    seen: list[Any] = []
    state = {"n": 0}

    def op() -> int:
        state["n"] += 1
        if state["n"] == 1:
            raise LookupError("retry me")  # a retry_errors class: no reconnect
        if state["n"] == 2:
            raise ConnectionResetError(104, "reset")
        return state["n"]

    class Obj:
        def revive(self, channel: Any) -> None:
            seen.append(("revive", channel))

    ensured = conn.ensure(Obj(), op, max_retries=3, interval_start=0.01,
                          on_revive=lambda channel: seen.append(("on_revive", channel)),
                          retry_errors=(LookupError,))
    assert ensured() == 3
    assert [kind for kind, _ in seen] == ["revive", "on_revive"]
    assert seen[0][1] is seen[1][1] is conn.default_channel


def test_url_query_values_are_converted() -> None:
    conn = Connection("memory://h/?connect_timeout=3&heartbeat=10&insist=true&ssl=false"
                      "&failover_strategy=shuffle&polling_interval=0.5")
    assert conn.connect_timeout == 3.0 and isinstance(conn.connect_timeout, float)
    assert conn.heartbeat == 10.0
    assert conn.insist is True
    assert conn.ssl is False
    assert conn._failover_strategy == "shuffle"
    assert conn.failover_strategy is Connection.failover_strategies["shuffle"]
    assert conn.transport_options == {"polling_interval": 0.5}
    assert Connection("memory://h/?ssl=true").ssl is True
    # an explicit argument wins over the default, the URL over the default
    assert Connection("memory://h/?failover_strategy=shuffle",
                      failover_strategy="round-robin")._failover_strategy == "shuffle"


@pytest.mark.parametrize("query, key", [("connect_timeout=soon", "connect_timeout"),
                                        ("insist=maybe", "insist"),
                                        ("heartbeat=x", "heartbeat")])
def test_bad_url_query_values_say_which(query: str, key: str) -> None:
    with pytest.raises(ValueError, match=key) as info:
        Connection(f"memory://u:s3cret@h/?{query}")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("host", ["guest:s3cret@localhost", "amqp:/localhost",
                                  "amqp//localhost", "local host", "localhost:port"])
def test_a_host_that_is_not_one_is_refused(host: str) -> None:
    with pytest.raises(ValueError) as info:
        Connection(host)
    assert "s3cret" not in str(info.value)
    assert "host" in str(info.value)


def test_host_and_port_without_a_scheme() -> None:
    conn = Connection("broker.example:5673", transport="memory")
    assert (conn.hostname, conn.port) == ("broker.example", 5673)
    assert Connection("h:5673", port=1).port == 1  # the argument wins
    ipv6 = Connection("::1", transport="memory")
    assert ipv6.hostname == "::1" and "[::1]" in ipv6.as_uri()


def test_ipv6_url_at_connection_level() -> None:
    conn = Connection("memory://u:p@[::1]:5672/vh")
    assert (conn.hostname, conn.port) == ("::1", 5672)
    assert conn.as_uri() == "memory://u:**@[::1]:5672/vh"
    assert Connection(conn.as_uri(include_password=True)).info()["hostname"] == "::1"


def test_a_malformed_alternate_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="port") as info:
        Connection("memory://a/;memory://u:s3cret@b:notaport/")
    assert "s3cret" not in str(info.value)


def test_tls_heartbeats_and_alternates_make_different_pools() -> None:
    from kombu import pools

    plain = Connection("memory://h/")
    assert pools.connections[plain] is pools.connections[Connection("memory://h/")]
    for other in (Connection("memory://h/", ssl=True), Connection("memory://h/", heartbeat=30),
                  Connection("memory://h/;memory://g/")):
        assert pools.connections[other] is not pools.connections[plain]
    pools.reset()


def test_pool_keyword_arguments_reach_the_pool() -> None:
    conn = Connection("memory://")
    pool = conn.Pool(2, close_after_fork=False, preload=1)
    assert (pool.limit, pool.close_after_fork, pool.preload) == (2, False, 1)
    channels = conn.ChannelPool(3, close_after_fork=False)
    assert (channels.limit, channels.close_after_fork) == (3, False)


def test_credential_provider_is_kept() -> None:
    provider = object()
    conn = Connection("memory://", credential_provider=provider)
    assert conn.credential_provider is provider
    assert conn.info()["credential_provider"] is provider
    assert conn.clone().credential_provider is provider
    assert Connection("memory://").info()["credential_provider"] is None


@pytest.mark.parametrize("limit", [True, -1, 2.5, "10"])
def test_set_limit_refuses_what_is_not_a_limit(limit: Any) -> None:
    from kombu import pools

    before = pools.get_limit()
    with pytest.raises(ValueError, match="set_limit"):
        pools.set_limit(limit)
    assert pools.get_limit() == before


# -- failover primitives ------------------------------------------------------------

def test_switch_and_maybe_switch_next_and_completes_cycle() -> None:
    conn = Connection("memory://a:1/;memory://b:2/;memory://c:3/")
    assert [conn.completes_cycle(i) for i in range(6)] == [False, False, True] * 2
    conn.maybe_switch_next()
    assert (conn.hostname, conn.port) == ("b", 2)
    conn.maybe_switch_next()
    conn.maybe_switch_next()
    assert conn.hostname == "a"  # round-robin wraps around
    conn.switch("memory://u:p@elsewhere:9/vh")
    assert (conn.hostname, conn.port, conn.userid, conn.virtual_host) == (
        "elsewhere", 9, "u", "vh")
    single = Connection("memory://only/")
    single.maybe_switch_next()
    assert single.hostname == "only" and single.completes_cycle(0)


def test_a_callable_failover_strategy_orders_the_hosts(flaky: Any) -> None:
    def backwards(hosts: list[str]) -> Any:
        while True:
            yield from reversed(hosts)

    flaky.refuse = {"a", "b"}
    conn = Connection("flaky://a/;flaky://b/;flaky://c/", failover_strategy=backwards)
    conn.ensure_connection(max_retries=5, interval_start=0, interval_step=0)
    # The strategy's first item (c) stands for the current host (a); then
    # it goes b, a, c.  Round-robin would have gone a, b, c.
    assert hosts(flaky.attempts) == ["a", "b", "a", "c"]
    assert conn.hostname == "c"


class URLTransport(MemoryTransport):
    """memory:// that parses its own URLs, as kombu's sqlalchemy transport does."""

    can_parse_url = True


def test_uri_prefix_and_transport_plus_scheme() -> None:
    register("sqlx", URLTransport, replace=True)
    try:
        conn = Connection("sqlx+postgresql://u:s3cret@db.example/app")
        assert conn.uri_prefix == "sqlx"
        assert conn.transport_cls == "sqlx"
        assert conn.hostname == "postgresql://u:s3cret@db.example/app"  # the transport's to parse
        assert conn.as_uri() == "sqlx+postgresql://u:**@db.example/app"
        assert conn.as_uri(include_password=True) == "sqlx+postgresql://u:s3cret@db.example/app"
        assert isinstance(conn.transport, URLTransport)
        assert conn.clone().as_uri() == conn.as_uri()
    finally:
        unregister("sqlx")


def test_manager_and_error_classes() -> None:
    conn = Connection("memory://")
    from kombu.transport.base import Management

    assert isinstance(conn.manager, Management)
    assert conn.manager is conn.manager  # cached
    assert isinstance(conn.recoverable_channel_errors, tuple)
    assert isinstance(conn.recoverable_connection_errors, tuple)
    assert set(conn.recoverable_channel_errors) <= set(conn.channel_errors)

