"""A Redis channel: its parts put together behind kombu's virtual channel API.

The parts: the channel's connection (:mod:`~kombu_redis.link`), the key
schema (:mod:`~kombu_redis.keys`), binding tables (:mod:`~kombu_redis.bindings`),
fanout queues (:mod:`~kombu_redis.fanout`), fetching (:mod:`~kombu_redis.fetch`),
the PUB/SUB waiter (:mod:`~kombu_redis.waiter`), the ack pipeline
(:mod:`~kombu_redis.acks`) and the restorer (:mod:`~kombu_redis.restore`).
"""

from __future__ import annotations

import logging
from functools import cached_property
from threading import get_ident
from time import monotonic
from typing import TYPE_CHECKING, Any, Callable

import redis
from kombu.transport import virtual

from kombu_redis.acks import POOL_WAIT_TIMEOUT, AckPipeline
from kombu_redis.bindings import Bindings, binding_ttl
from kombu_redis.connparams import connect_error, connparams
from kombu_redis.envelope import Message, UndecodableBody, encode
from kombu_redis.fanout import Fanout
from kombu_redis.fetch import Fetcher
from kombu_redis.keys import KeySchema, fanout_prefix
from kombu_redis.link import Link
from kombu_redis.options import OPTIONS, ChannelOptions, queue_arguments, queue_expires
from kombu_redis.qos import QoS
from kombu_redis.refresh import refresh_commands
from kombu_redis.restore import Restorer
from kombu_redis.scripts import ROUTE
from kombu_redis.waiter import Waiter

if TYPE_CHECKING:  # pragma: no cover
    from kombu_redis.transport import Transport

__all__ = ("Channel",)

logger = logging.getLogger("kombu.transport.redis")

class Channel(ChannelOptions, virtual.Channel):
    """A channel over Redis lists, sets and PUB/SUB."""

    QoS = QoS
    Message = Message
    connection: Transport
    supports_fanout = True
    exchange_types = {name: cls for name, cls in virtual.STANDARD_EXCHANGE_TYPES.items()
                      if name != "headers"}
    #: queue -> (exchange, routing key) of queues bound to fanout exchanges
    #: (process-wide, as in kombu, so any channel can consume them).
    _fanout_queues: dict[str, tuple[str, str]] = {}

    from_transport_options = virtual.Channel.from_transport_options + OPTIONS

    def __init__(self, connection: Transport, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        if not self.ack_emulation:
            self.QoS = virtual.QoS  # type: ignore[assignment]
        if self.queue_order_strategy not in ("round_robin", "sorted", "priority"):
            raise ValueError(f"queue_order_strategy must be 'round_robin', 'sorted' or "
                             f"'priority', not {self.queue_order_strategy!r}")
        self.priority_steps = sorted(int(s) for s in self.priority_steps)
        #: Queues with x-expires -> their TTL (ms).
        self.expires: dict[str, int] = {}
        self.auto_delete_queues: set[str] = set()
        self.next_housekeeping = 0.0
        #: Whether messages may be waiting that no fetch took yet (set by a
        #: tracking wake-up, a fetch that filled or found closed the prefetch
        #: window, a new consumer); the event loop fetches while it is set.
        self.wakeup = True
        #: When the pop script last ran (monotonic).
        self.last_fetch = 0.0
        db = self.pool.connection_kwargs.get("db", 0)
        option = self.fanout_prefix
        if option and not isinstance(option, str):
            option = self.keyprefix_fanout
        self.keyprefix_fanout = fanout_prefix(option, db)
        self.keys = keys = KeySchema(
            self.global_keyprefix, self.sep, self.priority_steps, self.unacked_key,
            self.unacked_index_key, self.unacked_mutex_key, self.keyprefix_fanout,
            self.fanout_patterns, self.keyprefix_queue, self.keyprefix_binding_permanent,
            self.keyprefix_binding_deadlines)
        self.link = link = self.new_link()
        self.acks = AckPipeline(link, keys, lambda: self.client, self.ack_emulation,
                                self.visibility_timeout, self.socket_timeout or POOL_WAIT_TIMEOUT)
        self.restorer = Restorer(lambda: self.client, keys, self.route_for_restore,
                                 self._get_message_priority, self.visibility_timeout,
                                 self.unacked_mutex_expire, self.unacked_restore_limit)
        self.bindings = Bindings(link, keys)
        self.fanout = Fanout(keys, self._fanout_queues)
        self.active_fanout_queues = self.fanout.active
        self.waiter = Waiter(self.new_connection, self._on_waiter_reply, self.socket_timeout)
        self.fetcher = Fetcher(link, keys, self.waiter, self.expires, self.codecs,
                               round_robin=self.queue_order_strategy == "round_robin")
        # The handshake and a PING prove the server answers, within the
        # connect timeout; then the connection keeps the socket_timeout option.
        try:
            link.open(self.pool.connection_kwargs.get("socket_connect_timeout"),
                      self.socket_timeout)
        except Exception as exc:
            self._disconnect()
            error = connect_error(self, exc)
            if error is exc:
                raise
            raise error from exc
        self.connection_errors = self.connection.connection_errors

    # -- connections ---------------------------------------------------------
    def _get_pool(self) -> Any:
        # Blocking: when all max_connections are in use (acks from many
        # threads, say), wait up to socket_timeout (else POOL_WAIT_TIMEOUT)
        # seconds for one to be released instead of failing at once.
        return redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
            timeout=self.socket_timeout or POOL_WAIT_TIMEOUT, **connparams(self))

    @property
    def pool(self) -> Any:
        """The connection pool shared by the channels of this connection."""
        transport = self.connection
        if transport.pool is None:
            transport.pool = self._get_pool()
        return transport.pool

    @cached_property
    def client(self) -> redis.Redis:
        """A redis-py client on the shared pool (thread-safe)."""
        return redis.Redis(connection_pool=self.pool)

    def new_connection(self, **overrides: Any) -> Any:
        """A connection of this channel's own (not from the pool), not connected yet.

        Call its ``connect()`` before use: redis-py's lazy connect on the
        first command skips the override of Sentinel's connections, which
        would then talk to the default host instead of the master.
        """
        pool = self.pool
        return pool.connection_class(**{**pool.connection_kwargs, **overrides})

    def new_link(self) -> Link:
        """This channel's command connection (another client plugs in here)."""
        return Link(self.new_connection, bool(self.retry_on_timeout))

    def _disconnect(self) -> None:
        self.link.disconnect()
        self.fetcher.disarm()
        self.waiter.close()

    # -- queue primitives ----------------------------------------------------
    def priority(self, n: int) -> int:
        """The priority step ``n`` falls in."""
        return self.keys.priority(n)

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        key = self.keys.queue_key(queue, self._get_message_priority(message))
        expires = self.expires
        if expires and queue in expires:
            ttl = expires[queue]
            self.link.pipe(("LPUSH", key, encode(message)),
                           *(("PEXPIRE", k, ttl) for k in self.keys.queue_keys(queue)))
        else:
            self.link.call("LPUSH", key, encode(message))

    def _put_fanout(self, exchange: str, message: dict[str, Any], routing_key: str,
                    **kwargs: Any) -> None:
        self.link.call("PUBLISH", self.keys.publish_channel(exchange, routing_key), encode(message))

    def basic_publish(self, message: dict[str, Any], exchange: str, routing_key: str,
                      **kwargs: Any) -> Any:
        self._inplace_augment_message(message, exchange, routing_key)
        if not exchange:
            return self._put(routing_key, message)
        exchange_type = self.typeof(exchange)
        if exchange_type.type in ("direct", "topic") and not self.expires:
            # Route on the server: one round trip instead of two.
            keys = self.keys
            delivered = self.link.script(ROUTE, [keys.binding_key(exchange)], [
                routing_key, keys.sep, encode(message), keys.prefix,
                keys.priority_suffix(self._get_message_priority(message)), exchange_type.type])
            if delivered or self.deadletter_queue is None:
                return None
        return exchange_type.deliver(message, exchange, routing_key, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        self.acks.flush()
        record = not no_ack and self.ack_emulation
        fetcher = self.fetcher
        while True:
            got = fetcher.pop([queue], 1, "1" if record else "0", rr=False)
            if not got:
                return None
            _, raw, tag = got[0]
            # Held (for the refresher) until the QoS has it.
            fetcher.delivering = tag
            try:
                if record:
                    self.connection.refresher.ensure()
                payload = fetcher.decode(queue, raw, tag)
                if payload is None:
                    continue
                try:
                    message = self.Message(payload, channel=self)
                except UndecodableBody as exc:
                    fetcher.quarantine(queue, raw, tag, exc)
                    continue
                message._source_queue = queue
                if not no_ack:
                    self.qos.append(message, message.delivery_tag)
                return message
            finally:
                fetcher.delivering = False

    def _size(self, queue: str) -> int:
        return sum(self.link.pipe(*(("LLEN", k) for k in self.keys.queue_keys(queue))))

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        # Redis drops empty lists, so a queue declared here counts as existing
        # even when empty (kombu 5.x reports it missing).
        if queue in self.connection.declared:
            return True
        return any(self.link.pipe(*(("EXISTS", k) for k in self.keys.queue_keys(queue))))

    def _purge(self, queue: str) -> int:
        commands: list[tuple[Any, ...]] = []
        for key in self.keys.queue_keys(queue):
            commands += [("LLEN", key), ("DEL", key)]
        return sum(self.link.pipe(*commands)[::2])

    def _new_queue(self, queue: str, auto_delete: bool = False, **kwargs: Any) -> None:
        self.connection.declared.add(queue)
        if auto_delete:
            self.auto_delete_queues.add(queue)
        ttl = queue_expires(kwargs.get("arguments"))
        if ttl is None:
            self.expires.pop(queue, None)
        else:
            self.expires[queue] = ttl

    def _is_topic(self, exchange: str, pattern: Any) -> bool:
        """Whether a binding with ``pattern`` to ``exchange`` is a topic binding."""
        return bool(pattern) and self.typeof(exchange).type == "topic"

    def _queue_bind(self, exchange: str, routing_key: str, pattern: Any, queue: str) -> None:
        """Add the binding as kombu 5.7 does (see :mod:`kombu_redis.bindings`)."""
        if self.typeof(exchange).type == "fanout":
            self.fanout.bind(queue, exchange, routing_key)
        member = self.keys.binding_member(routing_key, pattern, queue,
                                         self._is_topic(exchange, pattern))
        ttl = binding_ttl(self.expires[queue]) if queue in self.expires else None
        self.bindings.add(exchange, member, ttl)

    def queue_unbind(self, queue: str, exchange: str | None = None, routing_key: str = "",
                     arguments: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Remove the binding, from Redis too (kombu 5.x only forgets it locally)."""
        exchange = exchange or "amq.direct"
        if exchange in self.state.exchanges:
            meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
            rk, pattern, q = meta
            members = self.keys.binding_members(rk, pattern, q, self._is_topic(exchange, pattern))
            table = self.state.exchanges[exchange].get("table")
            if table:
                table[:] = [m for m in table if m != meta]
        else:  # declared elsewhere: whatever pattern the member carries
            members = self.bindings.members_of(exchange, routing_key, queue)
        self.bindings.remove(exchange, members)
        self.state.binding_delete(queue, exchange, routing_key)

    def _delete(self, queue: str, exchange: str = "", routing_key: str = "",
                pattern: Any = None, *args: Any, **kwargs: Any) -> None:
        self.auto_delete_queues.discard(queue)
        self.connection.declared.discard(queue)
        members = self.keys.binding_members(routing_key, pattern, queue,
                                            self._is_topic(exchange, pattern))
        self.link.pipe(*self.bindings.remove_commands(exchange, members),
                       *(("DEL", k) for k in self.keys.queue_keys(queue)))

    def sweep_bindings(self, limit: int = 100) -> int:
        """Delete binding tables nobody refreshed in time (kombu 5.7's sweep)."""
        return self.bindings.sweep(limit)

    def maybe_refresh_binding_expiry(self) -> None:
        """Keep the binding tables of consumed x-expires queues alive (as kombu 5.7)."""
        expires = self.expires
        queues = [q for q in self.fetcher.queues if q in expires]
        if not queues:
            return

        def entries() -> list[tuple[str, str, int]]:
            found = []
            for queue in queues:
                for exchange, routing_key, args in self.state.queue_bindings(queue):
                    _, pattern, _ = self.typeof(exchange).prepare_bind(
                        queue, exchange, routing_key, args)
                    member = self.keys.binding_member(routing_key, pattern, queue,
                                                      self._is_topic(exchange, pattern))
                    found.append((exchange, member, binding_ttl(expires[queue])))
            return found

        self.bindings.maybe_refresh(min(binding_ttl(expires[q]) for q in queues), entries)

    def get_table(self, exchange: str) -> list[tuple[Any, Any, str]]:
        return self.bindings.table(exchange)  # type: ignore[return-value]

    def route_for_restore(self, exchange: str, routing_key: str) -> list[str]:
        """The queues a record of unknown origin goes back to (kombu's routing)."""
        if not exchange:
            return [routing_key]
        table = self.get_table(exchange)
        if exchange in self.state.exchanges:
            kind = self.typeof(exchange).type
        else:  # declared by another process: a pattern means a topic binding
            kind = "topic" if any(pattern for _, pattern, _ in table) else "direct"
        return list(self.exchange_types[kind].lookup(table, exchange, routing_key, None))

    def prepare_queue_arguments(self, arguments: dict[str, Any] | None,
                                **kwargs: Any) -> dict[str, Any] | None:
        return queue_arguments(arguments, kwargs.get("expires"))

    # -- consuming -----------------------------------------------------------
    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> str:
        self.fanout.consume(queue)
        tag = super().basic_consume(queue, no_ack, *args, **kwargs)
        self._update_consuming()
        return tag

    def basic_cancel(self, consumer_tag: str) -> None:
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)
        if queue is None or queue in self._active_queues:
            return
        self.fanout.cancel(queue)
        if not self.closed:
            self.acks.settle()
            self.return_buffered(queue)
        self._update_consuming()

    def _update_consuming(self) -> None:
        """Recompute what this channel consumes after a consume or cancel."""
        no_ack = self.no_ack_consumers or ()
        queues: list[str] = []
        noack_queues = set()
        for tag, queue in self._tag_to_queue.items():
            if queue in self.active_fanout_queues:
                continue
            if queue not in queues:
                queues.append(queue)
            if tag in no_ack:
                noack_queues.add(queue)
        if self.queue_order_strategy == "sorted":
            queues.sort()
        self.fetcher.set_queues(queues, [self.ack_emulation and q not in noack_queues
                                         for q in queues])
        consuming = self.connection.consuming
        if self._consumers and self not in consuming:
            consuming.append(self)
            self.wakeup = True  # messages may be waiting already
        elif not self._consumers and self in consuming:
            consuming.remove(self)
        if not self.closed:
            topics = self.fanout.patterns()
            if topics != self.waiter.wanted:
                self.waiter.set_topics(topics)

    def fetch_window(self) -> int:
        """How many messages a fetch may take now: 0 when the QoS says no.

        The one place the channel asks its QoS whether it can consume
        (``can_consume()``, which Celery overrides); then the prefetch
        window, at most ``consume_batch_size``.
        """
        qos = self.qos
        if not qos.can_consume():
            return 0
        if "can_consume" in vars(qos):
            # Replaced on the instance (Celery's worker_disable_prefetch): it
            # answers for one message only, so fetch one and ask again.
            return 1
        window = qos.can_consume_max_estimate() if self.ack_emulation else None
        return 1 if window is None else min(window, self.consume_batch_size)

    def fetch(self) -> bool:
        """Fill the local buffer within the prefetch window; True if it has messages."""
        if monotonic() >= self.next_housekeeping:
            self.housekeeping()
        waiter = self.waiter
        if waiter.wanted and not waiter.connected:
            # The PUB/SUB connection was lost: reconnect and subscribe again
            # (fanout-only channels never get to arm tracking).
            waiter.connect()
        if waiter.sock is not None and waiter.pending():
            waiter.read()
        fetcher = self.fetcher
        if fetcher.buffer or not fetcher.queues:
            return bool(fetcher.buffer)
        limit = self.fetch_window()
        if limit <= 0:
            self.wakeup = True  # fetch once the QoS allows
            return False
        acks = self.acks.take()
        self.last_fetch = monotonic()
        try:
            recorded = fetcher.fetch(limit, acks)
        except BaseException:
            self.acks.pending_again(acks)  # acks are idempotent: send them again
            raise
        if fetcher.last_count >= limit:
            self.wakeup = True  # the window is full: more may be waiting
        if recorded:
            self.connection.refresher.ensure()
        return bool(fetcher.buffer)

    def deliver_one(self, send_acks: bool = True) -> bool:
        """Deliver one buffered message; False if there was none to deliver.

        Acks given by its callback are written when it returns, unless
        ``send_acks`` is False (the caller writes them after a batch).
        """
        fetcher, acks = self.fetcher, self.acks
        buffer = fetcher.buffer
        while buffer:
            # Held (for the refresher) before it leaves the buffer and until
            # its callback returned: the QoS has it only in between.
            fetcher.delivering = buffer[0][2]
            queue, raw, tag = buffer.popleft()
            try:
                payload = fetcher.decode(queue, raw, tag)
                if payload is None:
                    continue
                acks.callback_thread = get_ident()
                try:
                    self.connection._deliver(payload, queue)
                except UndecodableBody as exc:
                    if exc.payload is not payload:
                        raise
                    fetcher.quarantine(queue, raw, tag, exc)
                    continue
                finally:
                    acks.callback_thread = None
                    if send_acks and acks.pending:
                        acks.send()
            finally:
                fetcher.delivering = False
            return True
        return False

    # -- waiting -------------------------------------------------------------
    def waiters(self) -> list[Waiter]:
        """The connections this channel blocks on between fetches."""
        return [self.waiter]

    def before_wait(self) -> None:
        """Before the transport blocks: never hold acks while blocking."""
        self.acks.flush()

    def waiters_lost(self) -> bool:
        """Whether a waiter this channel needs lost its connection (a fetch
        reconnects it)."""
        waiter = self.waiter
        return not waiter.connected and bool(waiter.wanted or self.fetcher.queues)

    def before_nudge(self) -> None:
        """Called by the event loop's periodic nudge (nothing to do on one Redis)."""

    def wait_limit(self, now: float) -> float:
        """Seconds this channel may be left waiting (until housekeeping is due)."""
        return max(self.next_housekeeping - now, 0)

    def _on_waiter_reply(self, reply: Any) -> None:
        if reply[0] != b"pmessage":
            if reply[0] == b"message":
                self.wakeup = True  # a tracking invalidation: a consumed queue changed
            return  # or a confirmation
        if reply[3]:
            # Every queue of this channel bound to the exchange gets it (kombu
            # 5.x delivered it to only the last one consumed).
            for queue in self.fanout.queues_for(reply[2]):
                self.fetcher.buffer.append((queue, reply[3], False))

    # -- held messages -------------------------------------------------------
    def held_tags(self) -> list[Any]:
        """Record fields of the messages this channel holds: fetched, being
        delivered, or delivered and not acked (safe from another thread)."""
        if not self.ack_emulation or self.closed:
            return []
        held = self.fetcher.held()
        qos = self._qos
        if isinstance(qos, QoS):
            delivering = self.fetcher.delivering
            held.extend(t for t in qos.held() if t != delivering)
        return held

    def refresh_held(self, tags: list[Any], own: bool = False) -> None:
        """Set the index score of ``tags`` to now (only tags still recorded):
        on this channel's connection if ``own``, else through the shared pool."""
        for command in refresh_commands(self.keys.index, tags):
            if own:
                self.link.call(*command)
            else:
                self.client.execute_command(*command)  # type: ignore[no-untyped-call]

    def housekeeping(self) -> None:
        """Refresh held messages and bindings; restore the messages of dead consumers."""
        interval = max(min(self.unacked_restore_interval, self.visibility_timeout / 4), 0.01)
        self.next_housekeeping = monotonic() + interval
        if not self.fetcher.queues:
            return
        self.housekeeping_step(self.maybe_refresh_binding_expiry)
        if not self.ack_emulation:
            return
        self.housekeeping_step(lambda: self.refresh_held(self.held_tags(), own=True))
        self.housekeeping_step(self.restorer.restore_visible)

    def housekeeping_step(self, step: Callable[[], None]) -> None:
        """Run one step of :meth:`housekeeping` (its errors propagate)."""
        step()

    def return_buffered(self, queue: str | None = None) -> None:
        """Give back fetched but undelivered messages (of ``queue``, or all)."""
        self.restorer.give_back(self.fetcher.take(queue), self.active_fanout_queues)

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        consuming = self.connection.consuming if self.connection is not None else []
        if self in consuming:
            consuming.remove(self)
        try:
            self.acks.settle()
            self.return_buffered()
        except self.connection.connection_errors as exc:
            logger.warning("Could not return prefetched messages on close (%r); they "
                           "return after visibility_timeout", exc)
        try:
            for queue in list(self._fanout_queues):
                if queue in self.auto_delete_queues:
                    self.queue_delete(queue)
        except self.connection.connection_errors:
            pass
        try:
            super().close()
        finally:
            self._disconnect()


