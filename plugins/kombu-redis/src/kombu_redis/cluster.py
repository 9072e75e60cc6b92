"""The Redis Cluster transport: ``rediscluster://`` and ``redisclusters://`` (TLS).

```
rediscluster://h1:7000;rediscluster://h2:7001     # seed nodes, any of the cluster
```

Built on redis-py's :class:`redis.cluster.RedisCluster` (the slot map,
``MOVED``/``ASK``, topology refresh after a failover) and on the parts of
the Redis channel, with the cluster key schema
(:mod:`kombu_redis.cluster_keys`: every key of one queue in one slot),
the routing link (:mod:`kombu_redis.cluster_link`) and the per-queue
parts (:mod:`kombu_redis.cluster_parts`).  The package README's "Redis
Cluster" section has the URL, the key layout and the options.
"""

from __future__ import annotations

import logging
from functools import cached_property
from time import monotonic
from typing import Any, Callable
from urllib.parse import urlsplit

from kombu.exceptions import AccessRefused
from kombu.exceptions import ConnectionError as KombuConnectionError
from redis import exceptions as rexc

from kombu_redis.channel import Channel
from kombu_redis.cluster_keys import ClusterKeySchema
from kombu_redis.cluster_link import ClusterLink
from kombu_redis.cluster_parts import (
    NODE_ERRORS,
    ClusterAcks,
    ClusterBindings,
    ClusterFetcher,
    ClusterRestorer,
    NodeWaiter,
    QueueOf,
)
from kombu_redis.connparams import DEFAULT_DB, connect_error, connparams
from kombu_redis.errors import InvalidDatabase, refused_as
from kombu_redis.fanout import Fanout
from kombu_redis.link import NET_ERRORS
from kombu_redis.refresh import refresh_commands
from kombu_redis.transport import Transport
from kombu_redis.waiter import Waiter

__all__ = ("ClusterChannel", "ClusterTransport", "NotACluster", "ReplicaTimeout")

logger = logging.getLogger("kombu.transport.redis")

#: Errors of a cluster in transition (a failover, a reshard): retried.
CLUSTER_ERRORS: tuple[type[BaseException], ...] = (
    rexc.ClusterError, rexc.ClusterDownError, rexc.TryAgainError, rexc.SlotNotCoveredError,
    rexc.MasterDownError, rexc.RedisClusterException)

#: Replies that refuse a login or a command of the handshake.
REFUSALS: tuple[type[BaseException], ...] = (
    rexc.AuthenticationError, rexc.AuthorizationError, rexc.NoPermissionError)
#: What a refused login on a cluster adds to the error.
EVERY_NODE = ("On Redis Cluster the user must exist, with the same password and rules, on "
              "every node, masters and replicas: ACL rules are not replicated.")


def _refusal(exc: BaseException) -> BaseException | None:
    """The refused login (or command) behind ``exc``, if that is what it is."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, REFUSALS):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


#: Seconds a consumer about to block waits for the replies to the acks it wrote.
ACK_CONFIRM_TIMEOUT = 1.0


class NotACluster(KombuConnectionError, ValueError):
    """The seed nodes are not Redis Cluster nodes (not retried)."""


class ReplicaTimeout(KombuConnectionError):
    """Fewer replicas than ``replica_wait`` confirmed a publish in time (retried:
    the message may then be published twice)."""


class ClusterPool:
    """What the channel knows as its pool: the transport's RedisCluster client."""

    def __init__(self, cluster: Any, connection_kwargs: dict[str, Any]) -> None:
        self.cluster = cluster
        self.connection_kwargs = connection_kwargs

    def disconnect(self) -> None:
        self.cluster.close()


class ClusterChannel(Channel):
    """A channel over a Redis Cluster (see :mod:`kombu_redis.cluster`)."""

    keys: ClusterKeySchema
    link: ClusterLink  # type: ignore[assignment]
    fetcher: ClusterFetcher
    acks: ClusterAcks
    restorer: ClusterRestorer  # type: ignore[assignment]

    #: Replicas each publish and each pop waits for (``WAIT``), at most as many
    #: as the master has live; 0: none (Redis's asynchronous replication: a
    #: failover may lose the last writes).
    replica_wait = 0
    #: Seconds a publish or pop waits for them.
    replica_wait_timeout = 1.0
    from_transport_options = Channel.from_transport_options + (
        "replica_wait", "replica_wait_timeout")

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self.queue_of = queue_of = QueueOf()
        self.keys = keys = ClusterKeySchema(
            self.global_keyprefix, self.sep, self.priority_steps, self.unacked_key,
            self.unacked_index_key, self.unacked_mutex_key, self.keyprefix_fanout,
            self.fanout_patterns, self.keyprefix_queue, self.keyprefix_binding_permanent,
            self.keyprefix_binding_deadlines)
        link = self.link
        self.acks = ClusterAcks(link, keys, lambda: self.client, queue_of, self.ack_emulation,
                                self.visibility_timeout, self.acks.pool_wait)
        self.restorer = ClusterRestorer(
            lambda: self.client, keys, self._get_message_priority,
            lambda: self.fetcher.reachable(), queue_of, self.visibility_timeout,
            self.unacked_mutex_expire, self.unacked_restore_limit)
        self.bindings = ClusterBindings(link, keys)  # type: ignore[arg-type]
        self.fanout = Fanout(keys, self._fanout_queues)
        self.active_fanout_queues = self.fanout.active
        wait = int(self.replica_wait or 0)
        self.fetcher = ClusterFetcher(
            link, keys, self.waiter, self.expires, self.codecs,
            self.queue_order_strategy == "round_robin", self.node_waiter, queue_of,
            (wait, int(self.replica_wait_timeout * 1000)) if wait > 0 else None)
        self.fetcher.unsent = self.acks.pending_again
        self.acks.down = self.fetcher.down

    # -- connections ---------------------------------------------------------
    def _get_pool(self) -> Any:
        from redis.backoff import NoBackoff
        from redis.cluster import ClusterNode, RedisCluster
        from redis.retry import Retry

        params = self._node_params()
        seeds = self._seeds()
        where = ", ".join(f"{host}:{port}" for host, port in seeds)
        # redis-py's cluster client reads the slot map with no timeout but
        # socket_timeout: a seed that accepts and never answers would hang it.
        reachable = self._probe(params, seeds)
        kwargs = {k: v for k, v in params.items() if k not in ("connection_class",)}
        if params["connection_class"] is self.connection_class_ssl:
            kwargs["ssl"] = True
        try:
            # One retry, no backoff: what uses this client (restores, refreshes
            # from the refresher thread, acks from other threads) runs again on
            # its next pass; redis-py's default backoff would hold the consumer's
            # loop for seconds on a dead master.
            cluster = RedisCluster(
                startup_nodes=[ClusterNode(host, port)  # type: ignore[no-untyped-call]
                               for host, port in reachable],
                max_connections=self.max_connections, retry=Retry(NoBackoff(), 1), **kwargs)
        except rexc.RedisClusterException as exc:
            refusal = _refusal(exc)
            if refusal is not None:
                raise self._refused(refusal, where) from exc
            if "not enabled" in str(exc).lower() or "cluster mode" in str(exc).lower():
                raise NotACluster(
                    f"The Redis at {where} is not a cluster node ({exc}); use redis:// for "
                    "a single Redis server, or point rediscluster:// at cluster nodes.") from exc
            raise rexc.ConnectionError(f"Cannot reach Redis Cluster seed node(s) {where}: "
                                       f"{exc}") from exc
        return ClusterPool(cluster, {**params, "db": DEFAULT_DB})

    def _seeds(self) -> list[tuple[str, int]]:
        """``(host, port)`` of the seed nodes the URL names."""
        client = self.connection.client
        assert client is not None
        default_port = self.connection.default_port
        seeds = []
        for url in [*client.alt] or [f"rediscluster://{client.hostname}:{client.port or ''}"]:
            parts = urlsplit(url)
            if parts.hostname:
                seeds.append((parts.hostname, parts.port or default_port))
        return seeds or [(client.hostname or "127.0.0.1", client.port or default_port)]

    def _probe(self, params: dict[str, Any],
               seeds: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The seeds from the first that answers a PING within the connect timeout
        (the handshake included); a refused login or TLS failure raises at once."""
        timeout = params.get("socket_connect_timeout") or params.get("socket_timeout")
        last: BaseException | None = None
        for i, (host, port) in enumerate(seeds):
            conn = self._connection(params, host, port, socket_timeout=timeout,
                                    health_check_interval=0)
            try:
                conn.connect()
                conn.send_command("PING", check_health=False)
                conn.read_response()
            except (*NET_ERRORS, rexc.ResponseError) as exc:
                error = self._refused(exc, f"{host}:{port}")
                if error is not exc or isinstance(exc, AccessRefused):
                    raise error from exc
                last = exc
                continue
            finally:
                conn.disconnect()
            return seeds[i:]
        where = ", ".join(f"{host}:{port}" for host, port in seeds)
        raise rexc.ConnectionError(
            f"Cannot reach Redis Cluster seed node(s) {where}: {last}") from last

    def _refused(self, exc: BaseException, where: str) -> BaseException:
        """The error for a failure to connect to the node at ``where``: a refused
        login says the user must exist on every node."""
        error = connect_error(self, exc, where)
        if isinstance(error, AccessRefused) and not isinstance(exc, AccessRefused):
            error = refused_as(exc, f"{error} {EVERY_NODE}")
        return error

    def _connection(self, params: dict[str, Any], host: str, port: int,
                    **overrides: Any) -> Any:
        """A new, unconnected connection to ``host:port``; a refused login raises
        :exc:`~kombu.exceptions.AccessRefused` naming that node."""
        where = f"{host}:{port}"

        def on_connect(conn: Any) -> None:
            try:
                conn.on_connect()
            except REFUSALS as exc:
                raise self._refused(exc, where) from exc

        base = {k: v for k, v in params.items() if k not in ("connection_class", "db")}
        return params["connection_class"](**{**base, "host": host, "port": port,
                                             "redis_connect_func": on_connect, **overrides})

    def _node_params(self) -> dict[str, Any]:
        """redis-py connection parameters shared by every node (no host, port, db)."""
        params = connparams(self)
        if params.get("db", DEFAULT_DB) != DEFAULT_DB:
            raise InvalidDatabase(
                f"Redis Cluster has database 0 only, not {params['db']}: use "
                "rediscluster://host:port (or /0).")
        for name in ("host", "port", "db", "max_connections"):
            params.pop(name, None)
        return params

    @cached_property
    def client(self) -> Any:
        """The transport's RedisCluster client (thread-safe)."""
        return self.pool.cluster

    def node_factory(self, host: str, port: int) -> Callable[..., Any]:
        """The connection factory of the node at ``host:port`` (channel-owned connections)."""
        params = self.pool.connection_kwargs

        def factory(**overrides: Any) -> Any:
            return self._connection(params, host, port, **overrides)

        return factory

    def new_connection(self, **overrides: Any) -> Any:
        """A connection of this channel's own to a master (fanout subscriptions)."""
        node = self.pool.cluster.get_default_node()
        return self.node_factory(node.host, int(node.port))(**overrides)

    def new_link(self) -> ClusterLink:  # type: ignore[override]
        return ClusterLink(self.pool.cluster, self.node_factory, bool(self.retry_on_timeout))

    def node_waiter(self, host: str, port: int) -> Waiter:
        """The waiter that receives the tracking invalidations of one master."""
        return NodeWaiter(self.node_factory(host, port), self._on_waiter_reply,
                          self.socket_timeout)

    def waiters(self) -> list[Waiter]:
        """Every waiter of this channel: the fanout one and one per master consumed."""
        return [self.waiter, *self.fetcher.waiters.values()]

    def before_wait(self) -> None:
        """Read the replies owed to acks written without waiting (a redirected
        one is sent again), then write the pending acks."""
        if self.link.owed:
            self.link.confirm(monotonic() + ACK_CONFIRM_TIMEOUT)
        self.acks.flush()

    def waiters_lost(self) -> bool:
        """The fanout waiter lost its subscriptions, or a consumed master is not
        tracked now (a lost waiter, a failed master's retry, a moved slot)."""
        waiter, fetcher = self.waiter, self.fetcher
        if waiter.wanted and not waiter.connected:
            return True
        return bool(fetcher.queues) and fetcher.tracking and not fetcher.is_armed()

    def before_nudge(self) -> None:
        """Under the event loop: read the replies that arrived for acks written
        without waiting, so a redirected ack is sent again within a nudge (a
        master that hangs is not waited for)."""
        if self.link.owed:
            self.link.confirm_replied(monotonic() + ACK_CONFIRM_TIMEOUT)

    def wait_limit(self, now: float) -> float:
        """Seconds until housekeeping or the retry of a master that failed is due."""
        limit = super().wait_limit(now)
        fetcher = self.fetcher
        if fetcher.outages.until:  # only masters of queues consumed now count
            fetcher.outages.keep_only({fetcher.node_for(q) for q in fetcher.queues})
        retry = fetcher.outages.next_retry()
        return limit if retry is None else min(limit, max(retry - now, 0))

    def housekeeping_step(self, step: Callable[[], None]) -> None:
        """One step of housekeeping; a master that fails cuts it short, and the
        other steps still run (its queues' turn comes with the next pass)."""
        try:
            step()
        except NODE_ERRORS as exc:
            logger.debug("Housekeeping step cut short (%r); the next pass goes on", exc)

    def _disconnect(self) -> None:
        super()._disconnect()
        fetcher = getattr(self, "fetcher", None)
        if isinstance(fetcher, ClusterFetcher):
            fetcher.close_waiters()

    # -- queue primitives ----------------------------------------------------
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        from kombu_redis.envelope import encode

        keys = self.keys
        key = keys.queue_key(queue, self._get_message_priority(message))
        expires = self.expires
        replica_wait = self.replica_wait
        if not replica_wait and not (expires and queue in expires):
            self.link.call_on(key, "LPUSH", key, encode(message))  # the common case
            return
        commands: list[tuple[Any, ...]] = [("LPUSH", key, encode(message))]
        if expires and queue in expires:
            commands += [("PEXPIRE", k, expires[queue]) for k in keys.queue_keys(queue)]
        wait = min(int(replica_wait or 0), self.link.replicas_of(key)) if replica_wait else 0
        if wait > 0:
            timeout_ms = int(self.replica_wait_timeout * 1000)
            synced = self.link.pipe_on(key, *commands, ("WAIT", wait, timeout_ms))[-1]
            if int(synced) < wait:
                raise ReplicaTimeout(
                    f"{synced} of {wait} replica(s) of the master of queue {queue!r} confirmed "
                    f"the message within {self.replica_wait_timeout:g}s (replica_wait); it may "
                    "be lost if that master fails now. Retried, it may be delivered twice.")
        else:
            self.link.pipe_on(key, *commands)

    def basic_publish(self, message: dict[str, Any], exchange: str, routing_key: str,
                      **kwargs: Any) -> Any:
        # No server-side routing: the bound queues are in other slots.
        self._inplace_augment_message(message, exchange, routing_key)
        if not exchange:
            return self._put(routing_key, message)
        return self.typeof(exchange).deliver(message, exchange, routing_key, **kwargs)

    def _delete(self, queue: str, exchange: str = "", routing_key: str = "",
                pattern: Any = None, *args: Any, **kwargs: Any) -> None:
        self.auto_delete_queues.discard(queue)
        self.connection.declared.discard(queue)
        if exchange:
            members = self.keys.binding_members(routing_key, pattern, queue,
                                                self._is_topic(exchange, pattern))
            self.bindings.remove(exchange, members)
        self.link.pipe(*(("DEL", k) for k in self.keys.queue_keys(queue)))

    def refresh_held(self, tags: list[Any], own: bool = False) -> None:
        """As on one Redis, per queue; a queue whose master fails is skipped
        (retried on the next pass, well within the visibility timeout)."""
        error: BaseException | None = None
        for queue, group in self.queue_of.group(tags).items():
            if own and self.fetcher.down(queue):
                continue  # its master is in its retry pause
            try:
                for command in refresh_commands(self.keys.for_queue(queue).index, group):
                    if own:
                        self.link.call(*command)
                    else:
                        self.client.execute_command(*command)
            except NODE_ERRORS as exc:
                error = exc
        if error is not None:
            raise error


class ClusterTransport(Transport):
    """Redis Cluster transport (``rediscluster://``, ``redisclusters://``)."""

    Channel = ClusterChannel
    connection_errors = Transport.connection_errors + CLUSTER_ERRORS + (ReplicaTimeout,)
    recoverable_connection_errors = (
        Transport.recoverable_connection_errors + CLUSTER_ERRORS  # type: ignore[assignment]
        + (ReplicaTimeout,))
