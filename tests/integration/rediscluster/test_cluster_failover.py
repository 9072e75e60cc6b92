"""kombu-redis rides out a master SIGKILL and a reshard on a real Redis Cluster.

A producer thread publishes 2000 messages over four queues spread across the
masters while a consumer consumes them on its own Connection; in the middle
a master is SIGKILLed (its replica takes over) or slots move with
``redis-cli --cluster reshard``.  Both sides record what they saw, and each
test prints a one-line summary (``pytest -s`` shows it): duplicates (and
whether each was flagged redelivered or published again after a failed
publish), failed publish attempts by error, consumer errors ridden out, and
the longest stall of publishing and of consuming.

These tests change the cluster: slots move, and a killed master comes back
as a replica of the one that replaced it.  They leave it healthy (every slot
served, every master with a replica), which is all the other tests need.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from helpers.draining import turn
from helpers.redis_cluster import LocalCluster
from kombu import Connection, Consumer, Producer, Queue

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(150)]

TOTAL = 2000
FAST_RESTORE = {"visibility_timeout": 4, "unacked_restore_interval": 0.5}
WAIT_FOR_REPLICA = {"replica_wait": 1, "replica_wait_timeout": 2.0}


def cluster_client(cluster: LocalCluster) -> Any:
    from redis.cluster import ClusterNode, RedisCluster

    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster.live])


class Producer2000(threading.Thread):
    """Publishes TOTAL messages round robin over ``names``, retrying on the same
    Connection; calls ``fault()`` once ``at`` messages are out."""

    def __init__(self, url: str, names: list[str], at: int, fault: Callable[[], None],
                 options: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.names, self.at, self.fault = url, names, at, fault
        self.options = options
        #: Messages published again after a failed attempt.
        self.retried: set[int] = set()
        #: Failed publish attempts by error class.
        self.failures: collections.Counter[str] = collections.Counter()
        #: Longest time one message took to publish, retries included (s).
        self.stall = 0.0
        self.fault_at = 0.0
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with Connection(self.url, transport_options=self.options) as conn:
                producer = Producer(conn)
                for i in range(TOTAL):
                    if i == self.at:
                        self.fault_at = time.monotonic()
                        self.fault()
                    start = time.monotonic()
                    deadline = start + 60
                    while True:
                        try:
                            producer.publish({"i": i}, routing_key=self.names[i % len(self.names)])
                            break
                        except conn.recoverable_connection_errors as exc:
                            if time.monotonic() > deadline:
                                raise
                            self.retried.add(i)
                            self.failures[type(exc).__name__] += 1
                            time.sleep(0.1)
                    self.stall = max(self.stall, time.monotonic() - start)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.done.set()


@dataclass
class Seen:
    """What the consumer saw: ``(monotonic time, id, redelivered)`` per delivery."""

    arrivals: list[tuple[float, int, bool]] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def counts(self) -> collections.Counter[int]:
        return collections.Counter(i for _, i, _ in self.arrivals)

    def stall(self) -> float:
        """The longest gap between two deliveries until every message had arrived."""
        times = [t for t, _, _ in self.arrivals]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def duplicates(self, republished: set[int]) -> tuple[int, int, int, set[int]]:
        """(extra deliveries, of them flagged redelivered, of them explained by a
        publish sent again, ids explained by neither)."""
        flagged: collections.Counter[int] = collections.Counter(
            i for _, i, r in self.arrivals if r)
        extra = marked = again = 0
        unexplained = set()
        for i, n in self.counts.items():
            if n < 2:
                continue
            extra += n - 1
            covered = min(flagged[i], n - 1)
            marked += covered
            if covered < n - 1:
                if i in republished:
                    again += n - 1 - covered
                else:
                    unexplained.add(i)
        return extra, marked, again, unexplained


def consume_all(url: str, names: list[str], producer: Producer2000, options: dict[str, Any],
                timeout: float = 100, quiet: float = 6.0, idle: float = 10.0,
                loop: str = "drain_events") -> Seen:
    """Consume until every message arrived (or nothing came for ``idle`` seconds
    after the producer finished), then ``quiet`` seconds more (restores);
    with ``drain_events`` or under a Hub (``loop="hub"``)."""
    from kombu.asynchronous import Hub

    seen = Seen()
    ids: set[int] = set()
    hub = Hub() if loop == "hub" else None

    def on_message(body: Any, message: Any) -> None:
        seen.arrivals.append((time.monotonic(), body["i"],
                              bool(message.delivery_info.get("redelivered"))))
        ids.add(body["i"])
        message.ack()

    def drain(conn: Any) -> None:
        error = turn(conn, hub)
        if error is not None:
            seen.errors[type(error).__name__] += 1  # the same Connection goes on
            time.sleep(0.1)

    deadline = time.monotonic() + timeout
    with Connection(url, transport_options=options) as conn:
        if hub is not None:
            conn.transport.register_with_event_loop(conn.connection, hub)
        with Consumer(conn, [Queue(n) for n in names], callbacks=[on_message],
                      prefetch_count=50):
            while len(ids) < TOTAL and time.monotonic() < deadline:
                drain(conn)
                if producer.error is not None:
                    raise producer.error
                last = seen.arrivals[-1][0] if seen.arrivals else 0.0
                if producer.done.is_set() and time.monotonic() - last > idle:
                    break  # messages lost: nothing came for longer than a restore takes
            quiet_until = time.monotonic() + quiet
            while time.monotonic() < quiet_until:
                drain(conn)
    if hub is not None:
        hub.close()
    return seen


def summary(label: str, seen: Seen, producer: Producer2000, lost: list[int]) -> str:
    extra, marked, again, unexplained = seen.duplicates(producer.retried)
    failures = ", ".join(f"{n} {k}" for k, n in producer.failures.most_common()) or "none"
    errors = ", ".join(f"{n} {k}" for k, n in seen.errors.most_common()) or "none"
    return (f"[{label}] {TOTAL} msgs: lost {len(lost)}, duplicates {extra} "
            f"({marked} flagged redelivered, {again} republished, {len(unexplained)} neither); "
            f"failed publish attempts {sum(producer.failures.values())} ({failures}) for "
            f"{len(producer.retried)} msgs, longest publish {producer.stall:.2f}s; "
            f"consumer errors {sum(seen.errors.values())} ({errors}); "
            f"longest consume stall {seen.stall():.2f}s")


def record_keys_left(cluster: LocalCluster, names: list[str]) -> dict[str, int]:
    """Records still in Redis per queue (hash fields + index entries)."""
    from kombu_redis.cluster_keys import ClusterKeySchema

    keys = ClusterKeySchema()
    client = cluster_client(cluster)
    try:
        left = {}
        for name in names:
            unacked, index, _ = keys.record_keys(name)
            left[name] = int(client.hlen(unacked)) + int(client.zcard(index))
        return left
    finally:
        client.close()


@pytest.mark.parametrize("replica_wait", [1, 0], ids=["replica_wait=1", "replica_wait=0"])
def test_master_sigkill_during_2000_messages(
        redis_cluster: LocalCluster, unique: Callable[..., str], replica_wait: int) -> None:
    """With replica_wait=1 nothing is lost and every duplicate is flagged (or was
    published again); without it, only messages published before the kill may be
    lost or come twice unflagged (asynchronous replication)."""
    redis_cluster.wait_ok()
    client = cluster_client(redis_cluster)
    try:
        names = [unique("cfo") for _ in range(4)]
        owners = [int(client.get_node_from_key("{" + n + "}").port) for n in names]
    finally:
        client.close()
    victim = owners[0]
    options = {**FAST_RESTORE, **(WAIT_FOR_REPLICA if replica_wait else {})}
    url = redis_cluster.url()
    producer = Producer2000(url, names, TOTAL // 3, lambda: redis_cluster.kill(victim), options)
    producer.start()
    try:
        seen = consume_all(url, names, producer, options)
        producer.join(30)
        assert producer.done.is_set() and producer.error is None, producer.error
        redis_cluster.wait_failover(victim)
    finally:
        if redis_cluster.node(victim).killed:
            redis_cluster.revive(victim)  # back as a replica: the next test has its failover
    lost = sorted(set(range(TOTAL)) - set(seen.counts))
    print("\n" + summary(f"master SIGKILL, replica_wait={replica_wait}", seen, producer, lost))
    _, _, _, unexplained = seen.duplicates(producer.retried)
    if replica_wait:
        assert not lost, f"{len(lost)} message(s) lost: {lost[:20]}"
        assert not unexplained, f"duplicates neither flagged nor republished: {sorted(unexplained)}"
    else:
        after = [i for i in lost + sorted(unexplained) if i >= producer.at]
        assert not after, f"messages published after the kill lost or duplicated: {after[:20]}"
    assert victim not in redis_cluster.master_ports()


@pytest.mark.parametrize("loop", ["drain_events", "hub"])
def test_reshard_during_traffic_loses_nothing_and_redelivers_nothing(
        redis_cluster: LocalCluster, unique: Callable[..., str], loop: str) -> None:
    """Acks that hit a slot on the move follow MOVED/ASK (under the Hub too):
    with a visibility timeout far beyond the test, no message comes twice and
    no record is left behind."""
    redis_cluster.wait_ok()
    client = cluster_client(redis_cluster)
    try:
        masters = redis_cluster.master_ports()
        source, target = masters[0], masters[1]
        # The first slots of the source move; find queue names in them.
        slots = sorted(s for s in range(16384)
                       if int(client.nodes_manager.get_node_from_slot(s).port) == source)
        moving = set(slots[:300])
        names: list[str] = []
        while len(names) < 4:
            name = unique("crs")
            if client.keyslot("{" + name + "}") in moving:
                names.append(name)
    finally:
        client.close()
    url = redis_cluster.url()
    resharded = threading.Event()

    def reshard() -> None:
        def run() -> None:
            redis_cluster.reshard(source, target, len(moving))
            resharded.set()
        threading.Thread(target=run, daemon=True).start()

    options = {"visibility_timeout": 3600}
    producer = Producer2000(url, names, TOTAL // 4, reshard, options)
    producer.start()
    seen = consume_all(url, names, producer, options, quiet=1.0, loop=loop)
    producer.join(30)
    assert producer.done.is_set() and producer.error is None, producer.error
    assert resharded.wait(90), "the reshard did not finish"
    lost = sorted(set(range(TOTAL)) - set(seen.counts))
    print("\n" + summary(f"reshard of 300 slots, {loop}", seen, producer, lost))
    assert not lost, f"{len(lost)} message(s) lost: {lost[:20]}"
    redelivered = sorted({i for _, i, r in seen.arrivals if r})
    assert not redelivered, f"{len(redelivered)} message(s) redelivered: {redelivered[:20]}"
    twice = sorted(i for i, n in seen.counts.items() if n > 1 and i not in producer.retried)
    assert not twice, f"delivered twice: {twice[:20]}"
    assert record_keys_left(redis_cluster, names) == dict.fromkeys(names, 0), \
        "acknowledged messages left records behind (acks lost)"
    check_client = cluster_client(redis_cluster)
    try:
        assert all(int(check_client.get_node_from_key("{" + n + "}").port) == target
                   for n in names)
    finally:
        check_client.close()


@pytest.mark.parametrize("loop", ["drain_events", "hub"])
def test_a_killed_master_does_not_stall_the_other_masters_queues(
        redis_cluster: LocalCluster, unique: Callable[..., str], loop: str) -> None:
    """A master SIGKILLed while one consumer works through a backlog on six
    queues (two per master), with drain_events or under the Hub: the queues of
    the other masters are delivered during the outage, no error reaches the
    application, and once the replica took over, the dead master's queues are
    delivered too: every message, duplicates only flagged redelivered."""
    from helpers.cluster_outage import kill_a_master_while_consuming

    run = kill_a_master_while_consuming(redis_cluster, lambda: unique("cko"), loop,
                                        {**FAST_RESTORE, **WAIT_FOR_REPLICA})
    assert run.killed_at, f"only {len(run.arrivals)} deliveries before the deadline"
    others = run.others_meanwhile()
    print(f"\n[{loop}] master down: its queues resumed after {run.resumed_after():.2f}s; "
          f"{len(others)} deliveries from the other masters meanwhile, longest gap "
          f"{run.longest_other_gap():.2f}s; errors {[type(e).__name__ for e in run.errors]}")
    assert others, "no queue of a live master was delivered while the master was down"
    assert not run.errors, f"errors reached the application: {run.errors}"
    assert not run.lost(), f"lost: {sorted(run.lost())[:20]}"
    assert not run.unflagged_duplicates(), sorted(run.unflagged_duplicates())
    assert run.outages_left == {}, "the dead master is still retried after the failover"
