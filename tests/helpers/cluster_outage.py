"""One consumer working through a backlog on a Redis Cluster while a master is
SIGKILLed: what it saw, for the failover tests and bench/redis_cluster_failover.py.

Six queues (two per master) get ``per_queue`` messages each; one consumer
(prefetch 20, 2 ms of work per message) consumes them with ``drain_events``
or under a Hub; after 300 deliveries the master of the first queue is killed
and its replica takes over.  The killed node is revived (as a replica)
before :func:`kill_a_master_while_consuming` returns.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from helpers.draining import turn
from helpers.redis_cluster import LocalCluster, names_on_every_master

__all__ = ["OutageRun", "kill_a_master_while_consuming"]

#: Deliveries before the kill.
KILL_AFTER = 300


@dataclass
class OutageRun:
    """What the consumer saw: ``(monotonic time, queue, i, redelivered)`` per delivery."""

    names: list[str]
    victims: set[str]
    per_queue: int
    killed_at: float = 0.0
    arrivals: list[tuple[float, str, int, bool]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    #: Masters still in the consumer's retry pause once every message arrived
    #: (none should be: the dead one serves no queue any more, and a retry
    #: left due would keep the consumer's wait at zero, a busy loop).
    outages_left: dict[Any, float] = field(default_factory=dict)

    def resumed_after(self) -> float:
        """Seconds from the kill to the next delivery from a queue of the killed master."""
        back = min(t for t, q, _, _ in self.arrivals if q in self.victims and t > self.killed_at)
        return back - self.killed_at

    def others_meanwhile(self) -> list[float]:
        """Times of the deliveries from the other masters' queues during the outage."""
        back = self.killed_at + self.resumed_after()
        return [t for t, q, _, _ in self.arrivals
                if self.killed_at < t < back and q not in self.victims]

    def longest_other_gap(self) -> float:
        """The longest pause between deliveries from the other masters' queues
        during the outage (from the last one before the kill to the end of it)."""
        before = [t for t, q, _, _ in self.arrivals
                  if t <= self.killed_at and q not in self.victims][-1:]
        marks = [*before, *self.others_meanwhile(), self.killed_at + self.resumed_after()]
        return max((b - a for a, b in zip(marks, marks[1:])), default=0.0)

    def lost(self) -> set[tuple[str, int]]:
        seen = {(q, i) for _, q, i, _ in self.arrivals}
        return {(n, i) for n in self.names for i in range(self.per_queue)} - seen

    def unflagged_duplicates(self) -> set[tuple[str, int]]:
        """Messages delivered more than once without being flagged redelivered."""
        counts = collections.Counter((q, i) for _, q, i, _ in self.arrivals)
        flagged = {(q, i) for _, q, i, r in self.arrivals if r}
        return {k for k, n in counts.items() if n > 1 and k not in flagged}


def kill_a_master_while_consuming(cluster: LocalCluster, make_name: Callable[[], str],
                                  loop: str, options: dict[str, Any], per_queue: int = 400,
                                  timeout: float = 90.0) -> OutageRun:
    """Run one outage (``loop``: ``"drain_events"`` or ``"hub"``); see the module."""
    from kombu import Connection, Consumer, Producer, Queue
    from kombu.asynchronous import Hub

    cluster.wait_ok()
    cluster.wait_synced()
    owner = names_on_every_master(cluster, make_name, 2)
    names = list(owner)
    victim = owner[names[0]]
    run = OutageRun(names, {n for n in names if owner[n] == victim}, per_queue)
    url = cluster.url()
    with Connection(url, transport_options=options) as pub:
        producer = Producer(pub)
        for i in range(per_queue):
            for name in names:
                producer.publish({"q": name, "i": i}, routing_key=name,
                                 declare=[Queue(name)] if i == 0 else None)
    ids: set[tuple[str, int]] = set()
    hub = Hub() if loop == "hub" else None

    def on_message(body: Any, message: Any) -> None:
        run.arrivals.append((time.monotonic(), body["q"], body["i"],
                             bool(message.delivery_info.get("redelivered"))))
        ids.add((body["q"], body["i"]))
        message.ack()
        time.sleep(0.002)  # a consumer with work to do: the backlog lasts the outage

    try:
        with Connection(url, transport_options=options) as conn:
            if hub is not None:
                conn.transport.register_with_event_loop(conn.connection, hub)
            with Consumer(conn, [Queue(n) for n in names], callbacks=[on_message],
                          prefetch_count=20):
                deadline = time.monotonic() + timeout
                total = per_queue * len(names)
                while len(ids) < total and time.monotonic() < deadline:
                    if not run.killed_at and len(run.arrivals) >= KILL_AFTER:
                        run.killed_at = time.monotonic()
                        cluster.kill(victim)
                    error = turn(conn, hub, 0.5)
                    if error is not None:
                        run.errors.append(error)
                channel = conn.default_channel
                run.outages_left = dict(channel.fetcher.outages.until)
        cluster.wait_failover(victim)
    finally:
        if hub is not None:
            hub.close()
        if cluster.node(victim).killed:
            cluster.revive(victim)
    return run
