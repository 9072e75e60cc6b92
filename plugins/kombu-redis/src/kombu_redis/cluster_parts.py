"""The parts of a Redis channel that differ on Redis Cluster.

Every record lives in the hash of the queue it came from (see
:mod:`kombu_redis.cluster_keys`), so acks, restores and refreshes are
grouped by queue, each group in one slot.  Fetching runs the pop script once
per queue (its keys are one slot); consumers block on one waiter per master
that serves a consumed queue, each woken by client-side tracking on that
master.  The binding tables of x-expires queues expire through their own
TTL (kombu 5.7's single sorted set of deadlines would sit in another slot).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable
from itertools import chain
from time import monotonic, sleep, time
from typing import Any

from redis import exceptions as rexc

from kombu_redis.acks import ACK_CHUNK, POOL_WAIT_TIMEOUT, AckPipeline, on_pool
from kombu_redis.bindings import Bindings
from kombu_redis.cluster_keys import ClusterKeySchema
from kombu_redis.cluster_link import ClusterLink
from kombu_redis.fetch import FALLBACK_POLL_INTERVAL, Fetched, Fetcher
from kombu_redis.link import NET_ERRORS
from kombu_redis.restore import Restorer
from kombu_redis.scripts import POP, Script
from kombu_redis.waiter import Waiter

__all__ = ("ClusterAcks", "ClusterBindings", "ClusterFetcher", "ClusterRestorer", "NodeWaiter",
           "Outages", "QueueOf")

logger = logging.getLogger("kombu.transport.redis")

#: Replies of a cluster in transition, once ClusterLink's budget is spent.
CLUSTER_REDIRECTS = (rexc.AskError, rexc.TryAgainError, rexc.ClusterDownError)
#: Errors that take one master out of a channel's fetches for a while.
NODE_ERRORS = (*NET_ERRORS, *CLUSTER_REDIRECTS)
#: Seconds a master that failed is left out before it is tried again (the
#: first time; doubled on each failure up to NODE_RETRY_MAX).
NODE_RETRY_MIN = 0.05
NODE_RETRY_MAX = 0.5


class Outages:
    """The masters a channel cannot reach now, and when to try each again.

    A master that fails (killed, partitioned, its slots in transition) is
    left out of fetches, tracking and housekeeping for a short, growing
    while; the queues of the other masters go on being consumed meanwhile.
    Every failure refreshes the slot map (see ClusterLink), so once the
    cluster has promoted a replica, that queue's next try goes to it.
    """

    def __init__(self) -> None:
        self.until: dict[tuple[str, int], float] = {}
        self._delay: dict[tuple[str, int], float] = {}

    def skip(self, node: tuple[str, int]) -> bool:
        """Whether ``node`` failed recently and its retry is not due yet."""
        until = self.until.get(node)
        return until is not None and monotonic() < until

    def failed(self, node: tuple[str, int], exc: BaseException) -> None:
        delay = self._delay.get(node)
        if delay is None:
            logger.warning("Redis Cluster master %s:%d failed (%r); the queues it serves are "
                           "retried while the others are consumed", node[0], node[1], exc)
        delay = NODE_RETRY_MIN if delay is None else min(delay * 2, NODE_RETRY_MAX)
        self._delay[node] = delay
        self.until[node] = monotonic() + delay

    def ok(self, node: tuple[str, int]) -> None:
        if self._delay.pop(node, None) is not None:
            self.until.pop(node, None)
            logger.info("Redis Cluster master %s:%d answers again", node[0], node[1])

    def keep_only(self, nodes: set[tuple[str, int] | None]) -> None:
        """Forget the masters not in ``nodes`` (after a failover the dead one
        serves no queue any more: its retry is never due again)."""
        for node in [n for n in self.until if n not in nodes]:
            self.until.pop(node, None)
            self._delay.pop(node, None)

    def next_retry(self) -> float | None:
        """The monotonic time of the earliest retry due, or None."""
        return min(self.until.values(), default=None)


class NodeWaiter(Waiter):
    """The waiter of one master: a lost connection is closed, not raised (the
    fetch that follows finds out whether that master is down)."""

    def wait(self, timeout: float) -> bool:
        try:
            return super().wait(timeout)
        except NET_ERRORS:
            return False

    def read(self) -> None:
        try:
            super().read()
        except NET_ERRORS:
            pass


class QueueOf:
    """The queue a record field (``tag@queue`` or ``tag@queue@n``) belongs to.

    ``known`` holds the queues this channel fetched from, which settles
    queue names that contain ``@``.
    """

    def __init__(self) -> None:
        self.known: set[str] = set()

    def __call__(self, field: Any) -> str:
        text = field.decode() if isinstance(field, bytes) else str(field)
        _, sep, rest = text.partition("@")
        if not sep:
            raise ValueError(f"{text!r} is not a record field of this transport (tag@queue)")
        if rest in self.known:
            return rest
        head, sep, n = rest.rpartition("@")
        if sep and n.isdigit() and head:
            return head
        return rest

    def group(self, tags: Iterable[Any]) -> dict[str, list[Any]]:
        """``tags`` by queue, in order; tags that name no record (a message that
        was not recorded keeps its published tag) are left out."""
        groups: dict[str, list[Any]] = {}
        for tag in tags:
            try:
                queue = self(tag)
            except ValueError:
                continue
            groups.setdefault(queue, []).append(tag)
        return groups


def record_commands(keys: ClusterKeySchema, queue_of: QueueOf,
                    tags: list[Any]) -> list[tuple[Any, ...]]:
    """The commands that remove the records of ``tags``, per queue, ACK_CHUNK tags each."""
    commands: list[tuple[Any, ...]] = []
    for queue, group in queue_of.group(tags).items():
        view = keys.for_queue(queue)
        for i in range(0, len(group), ACK_CHUNK):
            chunk = group[i:i + ACK_CHUNK]
            commands += [("ZREM", view.index, *chunk), ("HDEL", view.unacked, *chunk)]
    return commands


class ClusterAcks(AckPipeline):
    """The ack pipeline with per-queue record keys."""

    keys: ClusterKeySchema
    link: ClusterLink  # type: ignore[assignment]

    def __init__(self, link: Any, keys: ClusterKeySchema, pool_client: Callable[[], Any],
                 queue_of: QueueOf, enabled: bool = True, visibility_timeout: float = 3600,
                 pool_wait: float = POOL_WAIT_TIMEOUT) -> None:
        super().__init__(link, keys, pool_client, enabled, visibility_timeout, pool_wait)
        self.queue_of = queue_of
        #: Whether a queue's master is in its retry pause (its acks wait).
        self.down: Callable[[str], bool] = lambda _queue: False
        #: Acks came back redirected (a slot moved): send the next ones waiting
        #: for the replies, following MOVED/ASK, until that succeeds.
        self.follow = False
        link.on_redirect = self.redirected

    def redirected(self, tags: list[Any]) -> None:
        """Acks written without waiting hit a slot that moved: pending again."""
        self.pending[:0] = tags
        self.follow = True

    def send(self) -> None:
        """Write the pending acks; those of a master in its retry pause wait."""
        if not self.pending or not self.enabled:
            self.pending = []
            return
        groups = self.queue_of.group(self.pending)  # tags without a record need no ack
        waiting: list[Any] = []
        for queue in [q for q in groups if self.down(q)]:
            waiting += groups.pop(queue)
        self.pending = []
        try:
            if groups:
                self._write(groups)
        finally:
            self.pending[:0] = waiting

    def _write(self, groups: dict[str, list[Any]]) -> None:
        """Write the acks of ``groups`` (queue -> tags): without waiting, each
        master's link owing its own; after a redirect, waiting and following it."""
        if self.follow:
            tags = [t for group in groups.values() for t in group]
            try:
                self.link.pipe(*record_commands(self.keys, self.queue_of, tags))
            except (*NET_ERRORS, *CLUSTER_REDIRECTS) as exc:
                self.pending[:0] = tags
                logger.debug("Could not send acks now (%r); sent with the next command", exc)
            else:
                self.follow = False
            return
        batches = [(record_commands(self.keys, self.queue_of, group), group)
                   for group in groups.values()]
        with self.link.lock:
            unsent = self.link.send_nowait(batches)
        if unsent:
            self.pending[:0] = unsent
            logger.debug("Could not send %d ack(s) now; sent again later", len(unsent))

    def flush(self) -> None:
        """Send the pending acks and wait for the replies, queue by queue; the
        acks of a master that fails stay pending (sent with a later flush)."""
        acks = self.pending
        if not acks:
            return
        self.pending = []
        failed: list[Any] = []
        error: BaseException | None = None
        for queue, group in self.queue_of.group(acks).items():
            if self.down(queue):
                failed += group
                continue
            try:
                self.remove(group, own=True)
            except NODE_ERRORS as exc:
                failed += group
                error = exc
        if failed:
            self.pending[:0] = failed
            logger.debug("Could not confirm %d ack(s) now (%r); sent again later",
                         len(failed), error)

    def remove(self, tags: list[Any], own: bool = False) -> None:
        if own:
            self.link.pipe(*record_commands(self.keys, self.queue_of, tags))
        else:
            on_pool(self._remove_pooled, tags, wait=self.pool_wait)

    def _remove_pooled(self, tags: list[Any]) -> None:
        with self.pool_client().pipeline(transaction=False) as pipe:
            for command in record_commands(self.keys, self.queue_of, tags):
                pipe.execute_command(*command)
            pipe.execute()

    def resend(self, acks: list[Any], deadline: float) -> None:
        commands = record_commands(self.keys, self.queue_of, acks)
        error: BaseException | None = None
        delay = 0.02
        while (left := deadline - monotonic()) > 0:
            try:
                self.link.send_fresh(commands, left)
                return
            except (*NET_ERRORS, rexc.InvalidResponse, rexc.RedisClusterException) as exc:
                error = exc
            sleep(max(min(delay, deadline - monotonic()), 0))
            delay = min(delay * 2, 0.5)
        logger.warning("Could not confirm %d ack(s) in time (%r); those messages are "
                       "redelivered after visibility_timeout", len(acks), error)


class ClusterRestorer:
    """One :class:`~kombu_redis.restore.Restorer` per queue (its records, its slot).

    ``queues()`` names the queues whose overdue records
    :meth:`restore_visible` looks at (the consumed ones): a queue's records
    are restored while it is consumed.
    """

    def __init__(self, client: Callable[[], Any], keys: ClusterKeySchema,
                 priority: Callable[[dict[str, Any]], int], queues: Callable[[], list[str]],
                 queue_of: QueueOf, visibility_timeout: float = 3600,
                 mutex_expire: float = 300, batch: int | None = None) -> None:
        self.client = client
        self.keys = keys
        self.priority = priority
        self.queues = queues
        self.queue_of = queue_of
        self.visibility_timeout = visibility_timeout
        self.mutex_expire = mutex_expire
        self.batch = batch
        self._restorers: dict[str, Restorer] = {}

    def for_queue(self, queue: str) -> Restorer:
        restorer = self._restorers.get(queue)
        if restorer is None:
            restorer = self._restorers[queue] = Restorer(
                self.client, self.keys.for_queue(queue), lambda _x, _rk: [queue],
                self.priority, self.visibility_timeout, self.mutex_expire, self.batch)
        return restorer

    def restore_visible(self) -> None:
        """Restore the overdue records of every consumed queue; a queue whose
        master fails is skipped (the last such error is raised at the end)."""
        error: BaseException | None = None
        for queue in list(self.queues()):
            try:
                self.for_queue(queue).restore_visible()
            except NODE_ERRORS as exc:
                error = exc
        if error is not None:
            raise error

    def restore_tags(self, tags: list[Any], leftmost: bool = False,
                     sources: dict[Any, str] | None = None, raws: dict[Any, Any] | None = None,
                     ceiling: float | None = None) -> int:
        groups: dict[str, list[Any]] = {}
        for tag in tags:
            queue = (sources or {}).get(tag)
            if not queue:
                try:
                    queue = self.queue_of(tag)
                except ValueError:
                    continue  # not recorded: nothing to restore
            groups.setdefault(queue, []).append(tag)
        return sum(self.for_queue(queue).restore_tags(group, leftmost, sources, raws, ceiling)
                   for queue, group in groups.items())

    def give_back(self, items: list[tuple[str, Any, Any]], broadcast: set[str]) -> None:
        groups: dict[str, list[tuple[str, Any, Any]]] = {}
        for item in items:
            groups.setdefault(item[0], []).append(item)
        for queue, group in groups.items():
            self.for_queue(queue).give_back(group, broadcast)


#: KEYS: the exchange's binding table, its permanent set (one slot).  ARGV:
#: member, ttl (ms).  Adds the member; unless the table has permanent
#: members, makes it expire no sooner than ``ttl`` from now.
REFRESH_EXPIRING_BINDING = Script("""
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
    local ttl = tonumber(ARGV[2])
    if redis.call('PTTL', KEYS[1]) < ttl then
        redis.call('PEXPIRE', KEYS[1], ttl)
    end
end
""")


class ClusterBindings(Bindings):
    """Binding tables whose expiry is the table key's own TTL.

    On one Redis, kombu 5.7 keeps the deadlines of every exchange in one
    sorted set and sweeps overdue tables; on a cluster that set would sit in
    another slot than the tables.  Here a binding of an x-expires queue sets
    the TTL of its exchange's table (``binding_ttl``, never shortened), a
    consumer of the queue refreshes it as on one Redis, and Redis deletes the
    table when nobody did; a table with permanent members (a queue without
    x-expires) never expires: adding one removes the TTL.
    """

    def add(self, exchange: str, member: str, ttl: int | None = None) -> None:
        keys = self.keys
        table, permanent = keys.binding_key(exchange), keys.permanent_key(exchange)
        if ttl is not None:
            self.link.script(REFRESH_EXPIRING_BINDING, [table, permanent], [member, ttl])
        else:
            self.link.pipe(("SADD", table, member), ("SADD", permanent, member),
                           ("PERSIST", table))

    def sweep(self, limit: int = 100) -> int:
        """Nothing to sweep: the tables expire by themselves."""
        return 0

    def maybe_refresh(self, min_ttl: int,
                      entries: Callable[[], list[tuple[str, str, int]]]) -> None:
        now = monotonic()
        if now - self.refreshed_at < min_ttl / 3000:
            return
        keys = self.keys
        calls = [([keys.binding_key(exchange), keys.permanent_key(exchange)], [member, ttl])
                 for exchange, member, ttl in entries()]
        if calls:
            self.link.pipe_scripts(REFRESH_EXPIRING_BINDING, calls)
        self.refreshed_at = now


class ClusterFetcher(Fetcher):
    """Fetches queue by queue; wakes on tracking invalidations from every master
    that serves a consumed queue.

    ``new_waiter(host, port)`` makes the waiter of one master;
    ``replica_wait`` is ``(numreplicas, timeout_ms)`` or None: each pop
    then waits (``WAIT``) until that many replicas have it, so a failover
    right after cannot give the messages out again.
    """

    link: ClusterLink  # type: ignore[assignment]
    keys: ClusterKeySchema

    def __init__(self, link: ClusterLink, keys: ClusterKeySchema, waiter: Waiter,
                 expires: dict[str, int], codecs: Container[str], round_robin: bool,
                 new_waiter: Callable[[str, int], Waiter], queue_of: QueueOf,
                 replica_wait: tuple[int, int] | None = None) -> None:
        super().__init__(link, keys, waiter, expires, codecs, round_robin)  # type: ignore[arg-type]
        self.new_waiter = new_waiter
        self.queue_of = queue_of
        self.replica_wait = replica_wait
        #: Master (host, port) -> the waiter that master's invalidations go to.
        self.waiters: dict[tuple[str, int], Waiter] = {}
        self._node_armed: dict[tuple[str, int], tuple[Any, Any, tuple[str, ...]]] = {}
        #: The masters this channel cannot reach now.
        self.outages = Outages()
        #: Takes acks that could not be applied (their master failed): the
        #: channel sends them again later (acks are idempotent).
        self.unsent: Callable[[list[Any]], None] = lambda _tags: None

    # -- fetching ------------------------------------------------------------
    def node_for(self, queue: str) -> tuple[str, int] | None:
        """The master serving ``queue`` now (slot map), or None if no master does."""
        try:
            return self.link.node_of(self.keys.tracking_prefix(queue))
        except rexc.RedisClusterException:
            return None

    def down(self, queue: str) -> bool:
        """Whether the master of ``queue`` failed and its retry is not due yet
        (every path that would touch it leaves it alone until then)."""
        if not self.outages.until:
            return False
        node = self.node_for(queue)
        return node is not None and self.outages.skip(node)

    def reachable(self) -> list[str]:
        """The consumed queues whose master is not in its retry pause."""
        return [q for q in self.queues if not self.down(q)]

    def pop(self, queues: list[str], limit: int, flags: str, rr: bool,
            acks: list[Any] | None = None) -> list[Fetched]:
        """Pop up to ``limit`` messages, each queue's in one script on its master.

        With round robin each queue first gets an equal share of ``limit``,
        then queues that had more share what is left.  A queue whose master
        fails is left out (see :class:`Outages`; its acks are handed to
        ``unsent``) while the others are fetched from.  A network error
        propagates only when every queue tried failed with one (the Connection
        then reconnects, as on one Redis); a cluster that answers
        ``CLUSTERDOWN`` or ``TRYAGAIN`` is in transition: its queues are
        retried, nothing is raised.
        """
        by_queue = self.queue_of.group(acks or ())
        got: list[Fetched] = []
        left = limit
        share = max(1, -(-limit // len(queues))) if rr and queues else limit
        active = list(range(len(queues)))
        outages = self.outages
        if outages.until:
            outages.keep_only({self.node_for(q) for q in queues})
        #: Whether a queue was fetched from, or left out for a reason other than
        #: a network error (a master in its retry pause, a cluster in transition).
        served = False
        error: BaseException | None = None
        while left > 0 and active:
            more = []
            for i in active:
                if left <= 0:
                    break
                queue = queues[i]
                node = self.node_for(queue)
                if node is not None and outages.skip(node):
                    served = True
                    continue
                want = min(share, left)
                queue_acks = by_queue.pop(queue, [])
                try:
                    taken = self._pop_one(queue, want, flags[i], queue_acks, got)
                except NODE_ERRORS as exc:
                    if isinstance(exc, NET_ERRORS):
                        error = exc
                    else:
                        served = True
                    if queue_acks:
                        self.unsent(queue_acks)
                    if node is not None:
                        outages.failed(node, exc)
                    continue
                served = True
                if node is not None:
                    outages.ok(node)
                left -= taken
                if taken >= want:
                    more.append(i)
            active = more
        if error is not None and not served:
            raise error
        if by_queue:  # acks of queues not fetched from now
            rest = list(chain.from_iterable(by_queue.values()))
            try:
                self.link.pipe(*record_commands(self.keys, self.queue_of, rest))
            except NODE_ERRORS:
                self.unsent(rest)
        expires = self.expires
        if expires:
            touched = {q for q, _, _ in got if q in expires}
            if touched:
                try:
                    self.link.pipe(*(("PEXPIRE", k, expires[q])
                                     for q in touched for k in self.keys.queue_keys(q)))
                except NODE_ERRORS as exc:  # the next fetch from them pushes it again
                    logger.debug("Could not push the expiry of %s now (%r)", sorted(touched), exc)
        return got

    def _pop_one(self, queue: str, limit: int, flag: str, acks: list[Any],
                 got: list[Fetched]) -> int:
        view = self.keys.for_queue(queue)
        self.queue_of.known.add(queue)
        keys = [view.unacked, view.index, *self.keys.queue_keys(queue)]
        argv = [repr(time()), limit, 1, flag, "0", self.keys.rejected_suffix, queue, *acks]
        replicas = 0
        if self.replica_wait:
            replicas = min(self.replica_wait[0], self.link.replicas_of(keys[2]))
        if replicas:
            timeout_ms = self.replica_wait[1]  # type: ignore[index]
            out, synced = self.link.script_then(POP, keys, argv, ("WAIT", replicas, timeout_ms),
                                                patient=False)
            if out and int(synced) < replicas:
                logger.debug("Popped from %r; %s of %d replica(s) confirmed in %d ms",
                             queue, synced, replicas, timeout_ms)
        else:
            out = self.link.script(POP, keys, argv, patient=False)
        taken = 0
        for i in range(0, len(out), 3):
            index, raw, tag = out[i], out[i + 1], out[i + 2]
            if index < 0:
                logger.error("Moved a message that is not a kombu envelope from queue %r to "
                             "%r: %.200r", queue, queue + self.keys.rejected_suffix, raw)
                continue
            got.append((queue, raw, tag.decode() if tag else False))
            taken += 1
        return taken

    def quarantine(self, queue: str, raw: Any, tag: Any, reason: BaseException) -> None:
        view = self.keys.for_queue(queue)
        logger.error("Moved an unusable message from queue %r to %r (%s): %.200r",
                     queue, queue + self.keys.rejected_suffix, reason, raw)
        commands: list[tuple[Any, ...]] = [("LPUSH", self.keys.rejected_key(queue), raw)]
        if tag:
            commands += [("HDEL", view.unacked, tag), ("ZREM", view.index, tag)]
        self.link.pipe_on(commands[0][1], *commands)

    # -- wake-ups ------------------------------------------------------------
    def _wanted(self) -> dict[tuple[str, int], tuple[str, ...]]:
        """Master -> the tracking prefixes of the consumed queues it serves now."""
        nodes: dict[tuple[str, int], list[str]] = {}
        for queue in self.queues:
            node = self.node_for(queue)
            if node is not None:
                nodes.setdefault(node, []).append(self.keys.tracking_prefix(queue))
        return {node: tuple(sorted(set(p))) for node, p in nodes.items()}

    def is_armed(self) -> bool:
        try:
            wanted = self._wanted()
        except rexc.RedisClusterException:
            return False
        if set(wanted) != set(self._node_armed):
            return False
        for node, prefixes in wanted.items():
            armed = self._node_armed[node]
            link = self.link.links.get(f"{node[0]}:{node[1]}")
            waiter = self.waiters.get(node)
            if (link is None or waiter is None or armed[0] is None or armed[0] is not link.sock
                    or not waiter.connected or armed[1] is not waiter.sock
                    or armed[2] != prefixes):
                return False
        return True

    def arm(self) -> None:
        wanted = self._wanted()
        for node in list(self.waiters):
            if node not in wanted:
                self.waiters.pop(node).close()
                self._node_armed.pop(node, None)
        outages = self.outages
        for node, prefixes in wanted.items():
            if outages.skip(node):
                continue  # tried again once its retry is due
            armed = self._node_armed.get(node)
            link = self.link.node_link(*node)
            waiter = self.waiters.get(node)
            if waiter is None:
                waiter = self.waiters[node] = self.new_waiter(*node)
            if (armed is not None and armed[0] is not None and armed[0] is link.sock
                    and waiter.connected and armed[1] is waiter.sock and armed[2] == prefixes):
                continue
            try:
                waiter.subscribe_invalidations()
                link.call("CLIENT", "TRACKING", "OFF")
                link.call("CLIENT", "TRACKING", "ON", "REDIRECT", waiter.client_id, "BCAST",
                          *chain.from_iterable(("PREFIX", p) for p in prefixes), "NOLOOP")
            except (*NET_ERRORS, rexc.ClusterDownError, rexc.TryAgainError) as exc:
                self.link.refresh(force=True)
                outages.failed(node, exc)  # its queues are polled meanwhile
                continue
            except rexc.ResponseError as exc:
                self.tracking = False
                logger.warning("Redis refused client-side tracking (%s); consumers poll every "
                               "%.2fs instead of blocking.", exc, FALLBACK_POLL_INTERVAL)
                return
            self._node_armed[node] = (link.sock, waiter.sock, prefixes)

    def disarm(self) -> None:
        self._node_armed = {}

    def close_waiters(self) -> None:
        waiters, self.waiters = list(self.waiters.values()), {}
        self._node_armed = {}
        for waiter in waiters:
            waiter.close()
