"""The Redis transport, wire-compatible with kombu 5.x's.

Keys, key types and the message envelope are kombu's, so this transport and
kombu can share a Redis (``global_keyprefix`` prefixes every key):

* a queue is a LIST: publishers ``LPUSH``, consumers pop from the right;
  priorities live in sub-queues ``queue + sep + str(step)`` (steps
  ``[0, 3, 6, 9]``; the bare name holds step 0, which is served first);
* bindings are SETs ``_kombu.binding.<exchange>`` with members
  ``routing_key + sep + pattern + sep + queue``;
* fanout exchanges ``PUBLISH`` to ``/{db}.<exchange>`` (``/<routing_key>``
  appended with ``fanout_patterns``);
* unacknowledged messages are the HASH ``unacked`` (tag -> JSON
  ``[payload, exchange, routing_key]``) and the ZSET ``unacked_index``
  (tag -> delivery time); ``unacked_mutex`` serialises restorers.

Where kombu 5.x is known to be wrong, this transport differs:

* Delivery is lossless: a server-side script pops a message *and* records it
  as unacknowledged in one atomic step (kombu pops with BRPOP and records in
  a second round trip, losing messages popped just before a crash or a
  connection cut, kombu #305).  Consumers block without popping, woken by
  Redis client-side tracking (``CLIENT TRACKING ... BCAST``, Redis >= 6);
  a server that refuses tracking is polled instead (and a warning logged).
* Unacknowledged messages are restored in full, batch after batch, not a
  fixed number per cycle (kombu #164, #2558), and with a compare-and-swap,
  so a late ack or a second restorer never duplicates one.  A live consumer
  refreshes the index entries of the messages it holds, so only the
  messages of consumers that died are restored after ``visibility_timeout``
  (celery #5935).
* Unacked messages go back to the queue they were consumed from, not
  through their exchange again (which copied topic and fanout messages).
* A consumed message is recorded under ``tag + '@' + queue`` (plus a
  counter if taken), never under the bare tag, and delivered with that
  tag: the copies of one publish routed to several queues share a delivery
  tag, and kombu 5.x records under the bare tag, so each copy (ours or a
  kombu 5.x consumer's in a mixed fleet) has a record of its own and
  acking one never drops another's (kombu 5.x overwrote it, losing the
  copy of a consumer that died).
* Acks given in a callback are written without waiting for the reply and
  confirmed before the next command on the channel's connection; a
  connection lost in between (or a close or cancel) sends them again
  (acks are idempotent).  If the process dies first, the message is
  redelivered after ``visibility_timeout`` (at-least-once).
* Any string ``fanout_prefix`` works (kombu 5.x dropped the messages of one
  that does not start with ``/``).
* ``rediss://`` verifies the server certificate unless told not to
  (``ssl_cert_reqs=none`` in the URL or in ``Connection(ssl=...)``); kombu
  silently turns verification off.
* Messages broadcast by a fanout exchange (PUB/SUB) are not recorded as
  unacknowledged: PUB/SUB cannot redeliver them, so kombu's records of them
  were restored into lists nobody reads.
* A message that is not JSON or not a kombu envelope is moved to the list
  ``queue + sep + 'rejected'`` and logged; consuming goes on.

Transport options are kombu's (``visibility_timeout``, ``global_keyprefix``,
``sep``, ``priority_steps``, ``queue_order_strategy``, ``fanout_prefix``,
``fanout_patterns``, ``ack_emulation``, ``unacked_*``, ``socket_*``,
``health_check_interval``, ``max_connections``, ``client_name``,
``retry_on_timeout``, ``master_name`` for Sentinel, ...) plus
``unacked_restore_interval`` (seconds between restore passes, default 10)
and ``consume_batch_size`` (most messages one round trip fetches within the
prefetch window, default 100).
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from bisect import bisect
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from itertools import chain
from queue import Empty
from threading import get_ident
from time import monotonic, sleep, time
from typing import Any
from urllib.parse import urlsplit

import redis
from kombu.exceptions import InconsistencyError
from kombu.transport import virtual
from kombu.utils.json import dumps, loads
from redis import exceptions as rexc

from kombu_redis.acks import ACK_CHUNK, QoS, Refresher, housekeeping, return_buffered
from kombu_redis.connparams import InvalidDatabase, TLSVerificationError, connect_error, connparams
from kombu_redis.scripts import POP, REFRESH_BINDING, ROUTE, SWEEP_BINDINGS, Script
from kombu_redis.waiter import NET_ERRORS, Waiter

__all__ = ("Channel", "InvalidDatabase", "Message", "QoS", "SentinelChannel",
           "SentinelTransport", "TLSVerificationError", "Transport", "UndecodableBody")

logger = logging.getLogger("kombu.transport.redis")

DEFAULT_PORT = 6379
DEFAULT_HEALTH_CHECK_INTERVAL = 25
PRIORITY_STEPS = [0, 3, 6, 9]
#: Seconds between polls when the server refuses client-side tracking.
FALLBACK_POLL_INTERVAL = 0.05
#: The longest single wait; bounds how late housekeeping can run.
MAX_WAIT = 1.0
#: Seconds a close or cancel spends at most confirming the acks written on
#: the channel's connection (or sending them again on a fresh one); at most
#: half the visibility timeout.
ACK_SETTLE_TIMEOUT = 5.0
#: Seconds an ack from another thread waits for a connection of the shared
#: pool when all ``max_connections`` are in use (``socket_timeout`` if set).
POOL_WAIT_TIMEOUT = 10.0
#: redis-py's error for a pool whose connections are all in use.
_POOL_EXHAUSTED: Any = getattr(rexc, "MaxConnectionsError", ())
#: kombu 5.7's binding expiry: a binding table of queues with x-expires is
#: swept once nobody refreshed it for this many times the queue's x-expires,
#: and never under MIN_BINDING_TTL (ms); channels sweep every
#: BINDING_SWEEP_INTERVAL seconds.
BINDING_EXPIRES_FACTOR = 2
MIN_BINDING_TTL = 60 * 60 * 1000
BINDING_SWEEP_INTERVAL = 60


#: kombu 5.7's regular expressions for the wildcards of a topic binding key.
TOPIC_WILDCARDS = {"*": r"[^\.]+", "#": r".*?"}
#: What kombu wrote before 5.x's fix of ``*`` (read and removed, never written).
LEGACY_TOPIC_WILDCARDS = {"*": r".*?[^\.]", "#": r".*?"}


def _kombu_topic_pattern(rkey: str, wildcards: dict[str, str] = TOPIC_WILDCARDS) -> str:
    """The regex kombu 5.7 stores in a topic binding member (wire format).

    kombu's ``TopicExchange.key_to_pattern``: ``escape_regex(rkey, '.#*')``,
    split on dots, wildcards replaced, joined with ``\\.``, anchored.
    """
    escaped = "".join(c if c.isalnum() or c in ".#*" else ("\\000" if c == "\000" else "\\" + c)
                      for c in rkey)
    return "^" + r"\.".join(wildcards.get(word, word) for word in escaped.split(".")) + "$"


class UndecodableBody(Exception):
    """A message's body cannot be decoded with its ``body_encoding``."""

    def __init__(self, payload: Any, error: BaseException) -> None:
        super().__init__(f"cannot decode the body ({error!r})")
        self.payload = payload


class Message(virtual.Message):
    """A delivered message; a body its encoding cannot decode raises UndecodableBody."""

    __slots__ = ()

    def __init__(self, payload: dict[str, Any], channel: Any = None, **kwargs: Any) -> None:
        try:
            super().__init__(payload, channel=channel, **kwargs)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # binascii.Error too
            raise UndecodableBody(payload, exc) from exc


def _encode(message: dict[str, Any]) -> str:
    """The JSON text of a message envelope.

    A large base64 body needs no escaping, so it is spliced in rather than
    scanned by the JSON encoder (the text is equivalent JSON).
    """
    body = message.get("body")
    if (type(body) is str and len(body) > 2048
            and message["properties"].get("body_encoding") == "base64"):
        rest = dumps({k: v for k, v in message.items() if k != "body"})
        return '{"body": "' + body + ('", ' + rest[1:] if len(rest) > 2 else '"}')
    return dumps(message)


class Channel(virtual.Channel):
    """A channel over Redis lists, sets and PUB/SUB."""

    QoS = QoS
    Message = Message
    connection: Transport
    supports_fanout = True
    exchange_types = {name: cls for name, cls in virtual.STANDARD_EXCHANGE_TYPES.items()
                      if name != "headers"}
    keyprefix_queue = "_kombu.binding.%s"
    keyprefix_binding_deadlines = "_kombu.binding_deadlines"
    keyprefix_binding_permanent = "_kombu.binding_permanent.%s"
    keyprefix_fanout = "/{db}."
    sep = "\x06\x16"
    ack_emulation = True
    unacked_key = "unacked"
    unacked_index_key = "unacked_index"
    unacked_mutex_key = "unacked_mutex"
    unacked_mutex_expire = 300
    #: Messages restored per batch (None: 100); every expired one is restored.
    unacked_restore_limit: int | None = None
    unacked_restore_interval = 10.0
    visibility_timeout: float = 3600
    priority_steps = PRIORITY_STEPS
    socket_timeout: float | None = None
    socket_connect_timeout: float | None = None
    socket_keepalive: bool | None = None
    socket_keepalive_options: dict[int, Any] | None = None
    retry_on_timeout: bool | None = None
    max_connections = 10
    health_check_interval = DEFAULT_HEALTH_CHECK_INTERVAL
    client_name: str | None = None
    #: A redis.CredentialProvider (or the dotted name of its class), used
    #: instead of the user name and password of the URL.
    credential_provider: Any = None
    fanout_prefix: bool | str = True
    fanout_patterns = True
    global_keyprefix = ""
    queue_order_strategy = "round_robin"
    consume_batch_size = 100
    #: queue -> (exchange, routing key) of queues bound to fanout exchanges
    #: (process-wide, as in kombu, so any channel can consume them).
    _fanout_queues: dict[str, tuple[str, str]] = {}

    from_transport_options = virtual.Channel.from_transport_options + (
        "sep", "ack_emulation", "unacked_key", "unacked_index_key", "unacked_mutex_key",
        "unacked_mutex_expire", "visibility_timeout", "unacked_restore_limit",
        "unacked_restore_interval", "fanout_prefix", "fanout_patterns", "global_keyprefix",
        "socket_timeout", "socket_connect_timeout", "socket_keepalive",
        "socket_keepalive_options", "queue_order_strategy", "max_connections",
        "health_check_interval", "retry_on_timeout", "priority_steps", "client_name",
        "consume_batch_size", "credential_provider",
    )

    connection_class: Any = redis.Connection
    connection_class_ssl: Any = redis.SSLConnection

    def __init__(self, connection: Transport, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        if not self.ack_emulation:
            self.QoS = virtual.QoS  # type: ignore[assignment]
        if self.queue_order_strategy not in ("round_robin", "sorted", "priority"):
            raise ValueError(f"queue_order_strategy must be 'round_robin', 'sorted' or "
                             f"'priority', not {self.queue_order_strategy!r}")
        self.priority_steps = sorted(int(s) for s in self.priority_steps)
        self._expires: dict[str, int] = {}
        self.auto_delete_queues: set[str] = set()
        self.active_fanout_queues: set[str] = set()
        #: Fanout exchange -> the queues of this channel consuming from it.
        self._fanout_to_queue: dict[str, list[str]] = {}
        #: Fetched, undelivered messages: (queue, raw, delivery tag if recorded
        #: as unacknowledged else False).
        self._buffer: deque[tuple[str, Any, Any]] = deque()
        #: Acks given by callbacks, written before drain_events returns.
        self._pending_acks: list[Any] = []
        #: Replies to read on this channel's connection before its next command
        #: (acks written without waiting), and the tags those acks carried.
        self._unread = 0
        self._unconfirmed: list[Any] = []
        #: The tag of the message being delivered: off the buffer and maybe
        #: not yet in qos._delivered (the refresher counts it as held).
        self._delivering: Any = False
        self._bindings_refreshed_at = float("-inf")
        self._bindings_swept_at = float("-inf")
        self._drain_thread: int | None = None
        self._lock = threading.RLock()
        self._conn: Any = None
        self._waiter = Waiter(self)
        self._armed: tuple[Any, Any, tuple[str, ...]] | None = None
        self._tracking = True
        self._list_queues: list[str] = []
        self._qkeys: dict[str, list[str]] = {}
        self._prefixes: tuple[str, ...] = ()
        self._flags = ""
        self._rr = 0
        self._next_housekeeping = 0.0
        if self.fanout_prefix:
            if isinstance(self.fanout_prefix, str):
                self.keyprefix_fanout = self.fanout_prefix
        else:
            self.keyprefix_fanout = ""
        kp = self.global_keyprefix
        self._unacked = kp + self.unacked_key
        self._index = kp + self.unacked_index_key
        self._mutex = kp + self.unacked_mutex_key
        self._binding_deadlines = kp + self.keyprefix_binding_deadlines
        self._rejected_suffix = self.sep + "rejected"
        self._unacked_rejected = self._unacked + self._rejected_suffix
        db = self.pool.connection_kwargs.get("db", 0)
        # Only the '{db}' placeholder: any other braces are kept literally.
        self.keyprefix_fanout = self.keyprefix_fanout.replace("{db}", str(db))
        # The handshake and a PING prove the server answers, within the
        # connect timeout; then the connection keeps the socket_timeout option.
        handshake = self.pool.connection_kwargs.get("socket_connect_timeout")
        conn = self._conn = self._new_connection(socket_timeout=handshake or self.socket_timeout)
        try:
            self._call("PING")
            conn.socket_timeout = self.socket_timeout
            if conn._sock is not None:
                conn._sock.settimeout(self.socket_timeout)
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
        if transport._pool is None:
            transport._pool = self._get_pool()
        return transport._pool

    @cached_property
    def client(self) -> redis.Redis:
        """A redis-py client on the shared pool (thread-safe)."""
        return redis.Redis(connection_pool=self.pool)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client if client is not None else self.client

    def _new_connection(self, **overrides: Any) -> Any:
        """A connection of this channel's own (not from the pool), not connected yet.

        Call its ``connect()`` before use: redis-py's lazy connect on the
        first command skips the override of Sentinel's connections, which
        would then talk to the default host instead of the master.
        """
        pool = self.pool
        return pool.connection_class(**{**pool.connection_kwargs, **overrides})

    def _ready(self, conn: Any) -> None:
        """Connect ``conn`` if needed, and read the replies it still owes."""
        if conn._sock is None:
            self._lost(conn)
            conn.connect()  # (again) through Sentinel, if that is the pool
        elif self._unread:
            while self._unread:
                try:
                    conn.read_response()
                except rexc.ResponseError:
                    pass
                self._unread -= 1
            self._unconfirmed = []

    def _lost(self, conn: Any) -> None:
        """``conn`` is (being) disconnected: replies owed on it will not come.

        Acks written on it but not confirmed go back to the pending ones (acks
        are idempotent), sent with the next pop, flush or close.
        """
        conn.disconnect()
        self._unread = 0
        if self._unconfirmed:
            self._pending_acks[:0] = self._unconfirmed
            self._unconfirmed = []

    def _retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether to run a command again after ``exc`` (retry_on_timeout: once)."""
        return (attempt == 0 and bool(self.retry_on_timeout)
                and isinstance(exc, (rexc.TimeoutError, TimeoutError)))

    def _call(self, *args: Any) -> Any:
        """Run one command on this channel's own connection."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._new_connection()
        packed = conn.pack_command(*args)
        if len(packed) > 1:  # a large value: one send instead of three
            packed = [b"".join(packed)]
        with self._lock:
            attempt = 0
            while True:
                try:
                    self._ready(conn)
                    conn.send_packed_command(packed)
                    return conn.read_response()
                except NET_ERRORS as exc:
                    self._lost(conn)
                    if not self._retry(exc, attempt):
                        raise
                    attempt += 1

    def _pipe(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Run several commands in one round trip on this channel's connection."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._new_connection()
        packed = conn.pack_commands(commands)
        with self._lock:
            attempt = 0
            while True:
                try:
                    self._ready(conn)
                    conn.send_packed_command(packed)
                    results: list[Any] = []
                    for _ in commands:
                        try:
                            results.append(conn.read_response())
                        except rexc.ResponseError as exc:
                            results.append(exc)
                    break
                except NET_ERRORS as exc:
                    self._lost(conn)
                    if not self._retry(exc, attempt):
                        raise
                    attempt += 1
        for result in results:
            if isinstance(result, rexc.ResponseError):
                raise result
        return results

    def _send_acks(self) -> None:
        """Write the pending acks to Redis now, without waiting for the reply.

        The reply is read before the next command on this connection; if the
        connection fails first, the acks are sent again (they are idempotent).
        """
        acks = self._pending_acks
        if not acks or not self.ack_emulation:
            self._pending_acks = []
            return
        conn = self._conn
        if conn is None:
            conn = self._conn = self._new_connection()
        commands: list[tuple[Any, ...]] = []
        for i in range(0, len(acks), ACK_CHUNK):
            chunk = acks[i:i + ACK_CHUNK]
            commands += [("ZREM", self._index, *chunk), ("HDEL", self._unacked, *chunk)]
        with self._lock:
            self._pending_acks = []
            try:
                self._ready(conn)
                # No health check: its PING would read the replies owed here.
                conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            except NET_ERRORS as exc:
                self._pending_acks[:0] = acks
                self._lost(conn)
                logger.debug("Could not send acks now (%r); sent with the next command", exc)
                return
            self._unread += len(commands)
            self._unconfirmed += acks

    def _settle_acks(self, timeout: float | None = None) -> None:
        """Make sure Redis applied every ack this channel was given (close, cancel).

        Sends the pending acks and reads the replies owed for acks written
        without waiting (see _send_acks); if the connection fails, or the
        replies do not come within ``timeout``, the acks written on it are
        sent again on a fresh connection (acks are idempotent), retried
        until ``timeout`` passes.  What still could not be sent is logged
        and dropped: those messages are redelivered after visibility_timeout.
        ``timeout`` defaults to ACK_SETTLE_TIMEOUT, at most half the
        visibility timeout (a later ack could hit the record of a redelivery).
        """
        if timeout is None:
            timeout = min(ACK_SETTLE_TIMEOUT, self.visibility_timeout / 2)
        if not self.ack_emulation:
            self._pending_acks = []
            return
        if not self._unread and not self._pending_acks:
            return
        deadline = monotonic() + timeout
        with self._lock:
            conn = self._conn
            if conn is not None and self._confirm(conn, deadline) and self._pending_acks \
                    and conn._sock is not None:
                self._send_acks()
                self._confirm(conn, deadline)
            acks, self._pending_acks = self._pending_acks, []
        if acks:
            self._resend_acks(acks, deadline)

    def _confirm(self, conn: Any, deadline: float) -> bool:
        """Read the replies owed on ``conn`` until ``deadline``; False if it was lost."""
        try:
            while self._unread:
                left = deadline - monotonic()
                if conn._sock is None or left <= 0 or not conn.can_read(left):
                    raise rexc.TimeoutError("Redis did not confirm the acks in time")
                try:
                    conn.read_response()
                except rexc.ResponseError:
                    pass
                self._unread -= 1
        except (*NET_ERRORS, rexc.InvalidResponse):
            self._lost(conn)  # the acks written on it are pending again
            return False
        self._unconfirmed = []
        return True

    def _resend_acks(self, acks: list[Any], deadline: float) -> None:
        """Send ``acks`` on fresh connections, retried until ``deadline``."""
        commands: list[tuple[Any, ...]] = []
        for i in range(0, len(acks), ACK_CHUNK):
            chunk = acks[i:i + ACK_CHUNK]
            commands += [("ZREM", self._index, *chunk), ("HDEL", self._unacked, *chunk)]
        error: BaseException | None = None
        delay = 0.02
        while (left := deadline - monotonic()) > 0:
            # Bounded by what is left of the timeout (the channel's own
            # connection may be dead, or have no socket timeout at all).
            fresh = self._new_connection(socket_timeout=left, socket_connect_timeout=left,
                                         health_check_interval=0)
            try:
                fresh.connect()
                fresh.send_packed_command(fresh.pack_commands(commands), check_health=False)
                for _ in commands:
                    try:
                        fresh.read_response()
                    except rexc.ResponseError:
                        pass
                return
            except (*NET_ERRORS, rexc.InvalidResponse) as exc:
                error = exc
            finally:
                fresh.disconnect()
            sleep(max(min(delay, deadline - monotonic()), 0))
            delay = min(delay * 2, 0.5)
        logger.warning("Could not confirm %d ack(s) in time (%r); those messages are "
                       "redelivered after visibility_timeout", len(acks), error)

    def _script(self, script: Script, keys: list[Any], argv: list[Any]) -> Any:
        try:
            return self._call(*script.args(keys, argv))
        except rexc.NoScriptError:
            self._call("SCRIPT", "LOAD", script.source)
            return self._call(*script.args(keys, argv))

    def _client_script(self, script: Script, keys: list[Any], argv: list[Any]) -> Any:
        """Run ``script`` through the thread-safe pool client."""
        client = self.client
        try:
            return client.evalsha(script.sha, len(keys), *keys, *argv)
        except rexc.NoScriptError:
            return client.eval(script.source, len(keys), *keys, *argv)

    def _disconnect(self) -> None:
        conn, self._conn, self._armed = self._conn, None, None
        if conn is not None:
            try:
                self._lost(conn)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        self._waiter.close()

    # -- keys ----------------------------------------------------------------
    def priority(self, n: int) -> int:
        """The priority step ``n`` falls in."""
        steps = self.priority_steps
        return steps[bisect(steps, n) - 1]

    def _q_for_pri(self, queue: str, pri: int) -> str:
        """The key of ``queue``'s sub-queue for priority ``pri`` (no global prefix)."""
        pri = self.priority(pri)
        return f"{queue}{self.sep}{pri}" if pri else queue

    def _key(self, queue: str, pri: int) -> str:
        return self.global_keyprefix + self._q_for_pri(queue, pri)

    def _queue_keys(self, queue: str) -> list[str]:
        kp = self.global_keyprefix
        return [kp + self._q_for_pri(queue, pri) for pri in self.priority_steps]

    def _binding_key(self, exchange: str) -> str:
        return self.global_keyprefix + self.keyprefix_queue % (exchange,)

    def _binding_member(self, exchange: str, routing_key: str, pattern: Any, queue: str) -> str:
        """The member kombu 5.7 writes for a binding (its topic regex, if a topic)."""
        if pattern and self.typeof(exchange).type == "topic":
            pattern = _kombu_topic_pattern(routing_key)
        return self.sep.join([routing_key or "", pattern or "", queue or ""])

    def _binding_members(self, exchange: str, routing_key: str, pattern: Any,
                         queue: str) -> list[str]:
        """Every member that may stand for a binding: kombu 5.7's, and for a
        topic also the regex older kombu versions wrote (removed on unbind)."""
        member = self._binding_member(exchange, routing_key, pattern, queue)
        if pattern and self.typeof(exchange).type == "topic":
            legacy = self.sep.join([routing_key or "", _kombu_topic_pattern(
                routing_key, LEGACY_TOPIC_WILDCARDS), queue or ""])
            if legacy != member:
                return [member, legacy]
        return [member]

    def _permanent_key(self, exchange: str) -> str:
        return self.global_keyprefix + self.keyprefix_binding_permanent % (exchange,)

    def _binding_ttl(self, queue: str) -> int:
        """Milliseconds an x-expires queue's binding table outlives its last refresh."""
        return max(self._expires[queue] * BINDING_EXPIRES_FACTOR, MIN_BINDING_TTL)

    def _get_publish_topic(self, exchange: str, routing_key: str) -> str:
        if routing_key and self.fanout_patterns:
            return "".join([self.keyprefix_fanout, exchange, "/", routing_key])
        return "".join([self.keyprefix_fanout, exchange])

    def _get_subscribe_topic(self, queue: str) -> str:
        """The PSUBSCRIBE pattern of a fanout queue: prefixes and exchange match
        literally; a routing key (with ``fanout_patterns``) is a glob, as in kombu."""
        exchange, routing_key = self._fanout_queues[queue]
        topic = _glob_escape(self.global_keyprefix + self.keyprefix_fanout + exchange)
        if routing_key and self.fanout_patterns:
            return f"{topic}/{routing_key}"
        return topic

    def _subscribe_topics(self, queue: str) -> tuple[str, ...]:
        """The PSUBSCRIBE patterns of a fanout queue.

        A queue bound without a routing key also subscribes to
        ``<exchange>/*``, so it gets messages published with any routing
        key, as a fanout exchange should.  (kombu 5.x, with its default
        ``fanout_patterns=True``, drops those: it publishes them to
        ``<exchange>/<routing_key>`` but subscribes to ``<exchange>`` only.)
        """
        topic = self._get_subscribe_topic(queue)
        exchange, routing_key = self._fanout_queues[queue]
        if routing_key or not self.fanout_patterns:
            return (topic,)
        return topic, topic + "/*"

    # -- queue primitives ----------------------------------------------------
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        key = self._key(queue, self._get_message_priority(message))
        if self._expires and queue in self._expires:
            ttl = self._expires[queue]
            self._pipe(("LPUSH", key, _encode(message)),
                       *(("PEXPIRE", k, ttl) for k in self._queue_keys(queue)))
        else:
            self._call("LPUSH", key, _encode(message))

    def _put_fanout(self, exchange: str, message: dict[str, Any], routing_key: str,
                    **kwargs: Any) -> None:
        self._call("PUBLISH", self.global_keyprefix + self._get_publish_topic(exchange, routing_key),
                   _encode(message))

    def basic_publish(self, message: dict[str, Any], exchange: str, routing_key: str,
                      **kwargs: Any) -> Any:
        self._inplace_augment_message(message, exchange, routing_key)
        if not exchange:
            return self._put(routing_key, message)
        exchange_type = self.typeof(exchange)
        if exchange_type.type in ("direct", "topic") and not self._expires:
            # Route on the server: one round trip instead of two.
            pri = self.priority(self._get_message_priority(message))
            delivered = self._script(ROUTE, [self._binding_key(exchange)], [
                routing_key, self.sep, _encode(message), self.global_keyprefix,
                f"{self.sep}{pri}" if pri else "", exchange_type.type])
            if delivered or self.deadletter_queue is None:
                return None
        return exchange_type.deliver(message, exchange, routing_key, **kwargs)

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """Pop the next message of ``queue`` without recording it."""
        for raw in self._pop([queue], 1, record=False):
            return raw
        raise Empty()

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        self._flush_acks()
        record = not no_ack and self.ack_emulation
        flags = "1" if record else "0"
        while True:
            got = self._pop_raw([queue], 1, flags, rr=False)
            if not got:
                return None
            _, raw, tag = got[0]
            # Held (for the refresher) until qos._delivered has it.
            self._delivering = tag
            try:
                if record:
                    self.connection._refresher.ensure()
                payload = self._decode(queue, raw, tag)
                if payload is None:
                    continue
                try:
                    message = self.Message(payload, channel=self)
                except UndecodableBody as exc:
                    self._quarantine(queue, raw, tag, exc)
                    continue
                message._source_queue = queue
                if not no_ack:
                    self.qos.append(message, message.delivery_tag)
                return message
            finally:
                self._delivering = False

    def _pop(self, queues: list[str], limit: int, record: bool) -> Iterator[dict[str, Any]]:
        """Pop up to ``limit`` messages (recorded as unacked if ``record``)."""
        result = self._pop_raw(queues, limit, "1" * len(queues) if record else "0" * len(queues),
                               rr=False)
        for queue, raw, tag in result:
            payload = self._decode(queue, raw, tag)
            if payload is not None:
                yield payload

    def _pop_raw(self, queues: list[str], limit: int, flags: str, rr: bool,
                 acks: list[Any] | None = None) -> list[tuple[str, Any, Any]]:
        nq = len(queues)
        keys: list[Any] = [self._unacked, self._index]
        cached = self._qkeys
        per_queue = [cached.get(q) or self._queue_keys(q) for q in queues]
        for level in range(len(self.priority_steps)):
            keys.extend(k[level] for k in per_queue)
        out = self._script(POP, keys, [repr(time()), limit, nq, flags, "1" if rr else "0",
                                       self._rejected_suffix, *queues, *(acks or ())])
        got: list[tuple[str, Any, Any]] = []
        for i in range(0, len(out), 3):
            index, raw, tag = out[i], out[i + 1], out[i + 2]
            if index < 0:
                logger.error("Moved a message that is not a kombu envelope from queue %r to %r: "
                             "%.200r", queues[-index - 1],
                             queues[-index - 1] + self._rejected_suffix, raw)
                continue
            got.append((queues[index - 1], raw, tag.decode() if tag else False))
        if self._expires:
            touched = {q for q, _, _ in got if q in self._expires}
            if touched:
                self._pipe(*(("PEXPIRE", k, self._expires[q])
                             for q in touched for k in self._queue_keys(q)))
        return got

    def _decode(self, queue: str, raw: Any, tag: Any) -> dict[str, Any] | None:
        """Parse a popped message; quarantine it if it is not a usable envelope.

        A recorded message is delivered with the tag it was recorded under
        (``tag + '@' + queue``, see scripts.POP), not the published one.
        """
        try:
            payload = loads(raw)
            props = payload["properties"]
            props["delivery_tag"]
            encoding = props.get("body_encoding")
            if encoding and encoding.lower() != "utf-8" and encoding not in self.codecs:
                raise ValueError(f"unknown body encoding {encoding!r}")
            if tag:
                props["delivery_tag"] = tag
            return payload  # type: ignore[no-any-return]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._quarantine(queue, raw, tag, exc)
            return None

    def _quarantine(self, queue: str, raw: Any, tag: Any, reason: BaseException) -> None:
        """Move an unusable message to ``queue + sep + 'rejected'`` and drop its record."""
        logger.error("Moved an unusable message from queue %r to %r (%s): %.200r",
                     queue, queue + self._rejected_suffix, reason, raw)
        commands: list[tuple[Any, ...]] = [
            ("LPUSH", self.global_keyprefix + queue + self._rejected_suffix, raw)]
        if tag:
            commands += [("HDEL", self._unacked, tag), ("ZREM", self._index, tag)]
        self._pipe(*commands)

    def _size(self, queue: str) -> int:
        return sum(self._pipe(*(("LLEN", k) for k in self._queue_keys(queue))))

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        # Redis drops empty lists, so a queue declared here counts as existing
        # even when empty (kombu 5.x reports it missing).
        if queue in self.connection._declared:
            return True
        return any(self._pipe(*(("EXISTS", k) for k in self._queue_keys(queue))))

    def _purge(self, queue: str) -> int:
        commands = list(chain.from_iterable((("LLEN", k), ("DEL", k))
                                            for k in self._queue_keys(queue)))
        return sum(self._pipe(*commands)[::2])

    def _new_queue(self, queue: str, auto_delete: bool = False, **kwargs: Any) -> None:
        self.connection._declared.add(queue)
        if auto_delete:
            self.auto_delete_queues.add(queue)
        try:
            self._expires[queue] = int(kwargs["arguments"]["x-expires"])
        except (KeyError, TypeError, ValueError):
            self._expires.pop(queue, None)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: Any, queue: str) -> None:
        """Add the binding as kombu 5.7 does.

        A queue with x-expires gets its member through kombu's refresh script,
        which also pushes the exchange's deadline in ``_kombu.binding_deadlines``
        (refreshed while the queue is consumed, swept when overdue); any other
        queue's member also goes to ``_kombu.binding_permanent.<exchange>``,
        which keeps the table when a sweep finds the deadline overdue.
        """
        if self.typeof(exchange).type == "fanout":
            self._fanout_queues[queue] = (exchange, routing_key.replace("#", "*"))
        member = self._binding_member(exchange, routing_key, pattern, queue)
        if queue in self._expires:
            self._script(REFRESH_BINDING, [self._binding_key(exchange), self._binding_deadlines],
                         [member, exchange, self._binding_ttl(queue)])
        else:
            self._pipe(("SADD", self._binding_key(exchange), member),
                       ("SADD", self._permanent_key(exchange), member))

    def queue_unbind(self, queue: str, exchange: str | None = None, routing_key: str = "",
                     arguments: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Remove the binding, from Redis too (kombu 5.x only forgets it locally)."""
        exchange = exchange or "amq.direct"
        if exchange in self.state.exchanges:
            meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
            members = self._binding_members(exchange, *meta)
            table = self.state.exchanges[exchange].get("table")
            if table:
                table[:] = [m for m in table if m != meta]
        else:  # declared elsewhere: whatever pattern the member carries
            sep = self.sep
            members = [m for m in (bytes(b).decode() for b in
                                   self._call("SMEMBERS", self._binding_key(exchange)) or ())
                       if m.split(sep)[::2] == [routing_key or "", queue]]
        if members:
            self._pipe(("SREM", self._binding_key(exchange), *members),
                       ("SREM", self._permanent_key(exchange), *members))
        self.state.binding_delete(queue, exchange, routing_key)

    def _delete(self, queue: str, exchange: str = "", routing_key: str = "",
                pattern: Any = None, *args: Any, **kwargs: Any) -> None:
        self.auto_delete_queues.discard(queue)
        self.connection._declared.discard(queue)
        members = self._binding_members(exchange, routing_key, pattern, queue)
        self._pipe(("SREM", self._binding_key(exchange), *members),
                   ("SREM", self._permanent_key(exchange), *members),
                   *(("DEL", k) for k in self._queue_keys(queue)))

    def sweep_bindings(self, limit: int = 100) -> int:
        """Delete binding tables nobody refreshed in time (kombu 5.7's sweep).

        Returns how many tables were taken off the deadline set.  A table
        that still has permanent members is kept; only its deadline goes.
        """
        prefixes = [self.global_keyprefix + keyprefix % ("",) for keyprefix in
                    (self.keyprefix_queue, self.keyprefix_binding_permanent)]
        return int(self._script(SWEEP_BINDINGS, [self._binding_deadlines], [*prefixes, limit]))

    def maybe_refresh_binding_expiry(self) -> None:
        """Keep the binding tables of consumed x-expires queues alive (as kombu 5.7).

        Refreshes them every third of their lifetime, then sweeps overdue
        tables at most every BINDING_SWEEP_INTERVAL seconds; a channel that
        consumes no x-expires queue does neither.
        """
        expires = self._expires
        queues = [q for q in self._list_queues if q in expires]
        if not queues:
            return
        now = monotonic()
        if now - self._bindings_refreshed_at >= min(self._binding_ttl(q) for q in queues) / 3000:
            commands: list[tuple[Any, ...]] = []
            for queue in queues:
                for exchange, routing_key, args in self.state.queue_bindings(queue):
                    _, pattern, _ = self.typeof(exchange).prepare_bind(
                        queue, exchange, routing_key, args)
                    member = self._binding_member(exchange, routing_key, pattern, queue)
                    commands.append(tuple(REFRESH_BINDING.args(
                        [self._binding_key(exchange), self._binding_deadlines],
                        [member, exchange, self._binding_ttl(queue)])))
            if commands:
                try:
                    self._pipe(*commands)
                except rexc.NoScriptError:
                    self._call("SCRIPT", "LOAD", REFRESH_BINDING.source)
                    self._pipe(*commands)
            self._bindings_refreshed_at = now
        if now - self._bindings_swept_at >= BINDING_SWEEP_INTERVAL:
            self.sweep_bindings()
            self._bindings_swept_at = now

    def get_table(self, exchange: str) -> list[tuple[Any, Any, str]]:
        members = self._call("SMEMBERS", self._binding_key(exchange))
        sep = self.sep
        return [tuple(m.decode().split(sep)) for m in members or ()]

    def prepare_queue_arguments(self, arguments: dict[str, Any] | None,
                                **kwargs: Any) -> dict[str, Any] | None:
        args = dict(arguments or {})
        expires = kwargs.get("expires")
        if expires is not None:
            args["x-expires"] = int(expires * 1000)
        return args

    # -- consuming -----------------------------------------------------------
    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> str:
        if queue in self._fanout_queues:
            exchange, _ = self._fanout_queues[queue]
            self.active_fanout_queues.add(queue)
            queues = self._fanout_to_queue.setdefault(exchange, [])
            if queue not in queues:
                queues.append(queue)
        tag = super().basic_consume(queue, no_ack, *args, **kwargs)
        self._update_consuming()
        return tag

    def basic_cancel(self, consumer_tag: str) -> None:
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)
        if queue is None or queue in self._active_queues:
            return
        if queue in self.active_fanout_queues:
            self.active_fanout_queues.discard(queue)
            exchange, _ = self._fanout_queues.get(queue, (None, None))
            queues = self._fanout_to_queue.get(exchange, [])  # type: ignore[arg-type]
            if queue in queues:
                queues.remove(queue)
            if not queues:
                self._fanout_to_queue.pop(exchange, None)  # type: ignore[arg-type]
        if not self.closed:
            self._settle_acks()
            return_buffered(self, queue)
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
        self._list_queues = queues
        self._qkeys = {q: self._queue_keys(q) for q in queues}
        self._prefixes = self._tracking_prefixes()
        self._flags = "".join("0" if q in noack_queues or not self.ack_emulation else "1"
                              for q in queues)
        consuming = self.connection._consuming
        if self._consumers and self not in consuming:
            consuming.append(self)
        elif not self._consumers and self in consuming:
            consuming.remove(self)
        if not self.closed:
            topics = {t for q in self.active_fanout_queues for t in self._subscribe_topics(q)}
            if topics != self._waiter.wanted:
                self._waiter.set_topics(topics)

    def _flush_acks(self) -> None:
        """Send the pending acks and wait until Redis confirmed them."""
        acks = self._pending_acks
        if acks:
            self._pending_acks = []
            try:
                self._remove_records(acks, own=True)
            except BaseException:
                self._pending_acks[:0] = acks
                raise

    def _ack(self, tag: Any) -> None:
        if self._drain_thread == get_ident():
            # A callback's ack: written as soon as the callback returns,
            # together with any other ack it gave (before drain_events returns).
            self._pending_acks.append(tag)
        elif self.ack_emulation:
            self._remove_records([tag])

    def _remove_records(self, tags: list[Any], own: bool = False) -> None:
        for i in range(0, len(tags), ACK_CHUNK):
            chunk = tags[i:i + ACK_CHUNK]
            if own:
                self._pipe(("ZREM", self._index, *chunk), ("HDEL", self._unacked, *chunk))
            else:
                self._on_pool(self._remove_pooled, chunk)

    def _remove_pooled(self, tags: list[Any]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zrem(self._index, *tags)
            pipe.hdel(self._unacked, *tags)
            pipe.execute()

    def _on_pool(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on the shared pool, waiting (bounded) for a free connection.

        Acks from many threads at once can find all ``max_connections`` in
        use; they wait up to ``socket_timeout`` (else POOL_WAIT_TIMEOUT)
        seconds for one to be released instead of failing.
        """
        deadline = None
        delay = 0.001
        while True:
            try:
                return fn(*args)
            except _POOL_EXHAUSTED:
                now = monotonic()
                if deadline is None:
                    deadline = now + (self.socket_timeout or POOL_WAIT_TIMEOUT)
                elif now >= deadline:
                    raise
                sleep(min(delay, deadline - now))
                delay = min(delay * 2, 0.05)

    def _fetch(self) -> bool:
        """Fill the local buffer within the prefetch window; True if it has messages."""
        if monotonic() >= self._next_housekeeping:
            housekeeping(self)
        waiter = self._waiter
        if waiter.wanted and not waiter.connected:
            # The PUB/SUB connection was lost: reconnect and subscribe again
            # (fanout-only channels never get to _arm below).
            waiter.connect()
        if waiter.sock is not None and waiter.pending():
            waiter.read()
        buffer = self._buffer
        queues = self._list_queues
        if buffer or not queues:
            return bool(buffer)
        qos = self.qos
        if not qos.can_consume():
            return False
        window = qos.can_consume_max_estimate() if self.ack_emulation else None
        limit = 1 if window is None else min(window, self.consume_batch_size)
        if "can_consume" in vars(qos):
            limit = 1  # replaced on the instance (Celery's worker_disable_prefetch): ask per message
        if limit <= 0:
            return False
        if self._tracking and not self._is_armed():
            self._arm()
        rr = self.queue_order_strategy == "round_robin" and len(queues) > 1
        flags = self._flags
        if rr:
            start = self._rr = (self._rr + 1) % len(queues)
            queues = queues[start:] + queues[:start]
            flags = flags[start:] + flags[:start]
        acks = self._pending_acks
        if acks:
            self._pending_acks = []
        if len(acks) > ACK_CHUNK:
            self._remove_records(acks, own=True)
            acks = []
        try:
            got = self._pop_raw(queues, limit, flags, rr, acks)
        except BaseException:
            self._pending_acks[:0] = acks  # acks are idempotent: send them again
            raise
        if got:
            buffer.extend(got)
            if "1" in flags:
                self.connection._refresher.ensure()
        return bool(buffer)

    def _deliver_one(self) -> bool:
        """Deliver one buffered message; False if there was none to deliver."""
        buffer = self._buffer
        while buffer:
            # Held (for the refresher) before it leaves the buffer and until
            # its callback returned: qos._delivered has it only in between.
            self._delivering = buffer[0][2]
            queue, raw, tag = buffer.popleft()
            try:
                payload = self._decode(queue, raw, tag)
                if payload is None:
                    continue
                self._drain_thread = get_ident()
                try:
                    self.connection._deliver(payload, queue)
                except UndecodableBody as exc:
                    if exc.payload is not payload:
                        raise
                    self._quarantine(queue, raw, tag, exc)
                    continue
                finally:
                    self._drain_thread = None
                    if self._pending_acks:
                        self._send_acks()
            finally:
                self._delivering = False
            return True
        return False

    # -- waiting -------------------------------------------------------------
    def _tracking_prefixes(self) -> tuple[str, ...]:
        names = sorted({self.global_keyprefix + q for q in self._list_queues})
        # Redis refuses overlapping prefixes; 'a' already covers 'ab'.
        kept: list[str] = []
        for name in names:
            if not any(name.startswith(k) for k in kept):
                kept.append(name)
        return tuple(kept)

    def _is_armed(self) -> bool:
        armed, conn, waiter = self._armed, self._conn, self._waiter
        return (armed is not None and conn is not None and armed[0] is conn._sock
                and waiter.connected and armed[1] is waiter.sock
                and armed[2] == self._prefixes)

    def _arm(self) -> None:
        """Have Redis wake this channel's waiter when a consumed queue changes."""
        waiter = self._waiter
        prefixes = self._prefixes
        try:
            waiter.subscribe_invalidations()
            self._call("CLIENT", "TRACKING", "OFF")
            self._call("CLIENT", "TRACKING", "ON", "REDIRECT", waiter.client_id, "BCAST",
                       *chain.from_iterable(("PREFIX", p) for p in prefixes), "NOLOOP")
        except rexc.ResponseError as exc:
            self._tracking = False
            logger.warning("Redis refused client-side tracking (%s); consumers poll every "
                           "%.2fs instead of blocking.", exc, FALLBACK_POLL_INTERVAL)
            return
        self._armed = (self._conn._sock, waiter.sock, prefixes)

    def _on_waiter_reply(self, reply: Any) -> None:
        if reply[0] != b"pmessage":
            return  # a tracking invalidation (a wake-up) or a confirmation
        channel = reply[2].decode()[len(self.global_keyprefix) + len(self.keyprefix_fanout):]
        if reply[3]:
            # Every queue of this channel bound to the exchange gets it (kombu
            # 5.x delivered it to only the last one consumed).
            for queue in self._fanout_to_queue.get(channel.split("/", 1)[0], ()):
                self._buffer.append((queue, reply[3], False))

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        consuming = self.connection._consuming if self.connection is not None else []
        if self in consuming:
            consuming.remove(self)
        try:
            self._settle_acks()
            return_buffered(self)
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


RedisChannel = Channel


class Transport(virtual.Transport):
    """Redis transport (``redis://``, ``rediss://``, ``redis+socket://``)."""

    Channel = Channel
    polling_interval = None
    default_port = DEFAULT_PORT
    driver_type = "redis"
    driver_name = "redis"
    implements = virtual.Transport.implements.extend(
        asynchronous=False,
        exchange_type=frozenset(["direct", "topic", "fanout"]),
    )
    connection_errors = virtual.Transport.connection_errors + (
        InconsistencyError, OSError, rexc.ConnectionError, rexc.BusyLoadingError,
        rexc.AuthenticationError, rexc.TimeoutError)
    channel_errors = virtual.Transport.channel_errors + (
        rexc.DataError, rexc.InvalidResponse, rexc.ResponseError)
    #: Errors a reconnect can repair (AccessRefused and TLS failures are not).
    recoverable_connection_errors = (rexc.ConnectionError, rexc.TimeoutError,
                                     rexc.BusyLoadingError, OSError)
    recoverable_channel_errors = ()

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._pool: Any = None
        self._consuming: list[RedisChannel] = []
        self._declared: set[str] = set()
        #: Refreshes the visibility of the messages this transport holds.
        self._refresher = Refresher(self)

    def driver_version(self) -> str:
        return str(redis.__version__)

    def drain_events(self, connection: Any,  # type: ignore[override]
                     timeout: float | None = None) -> None:
        """Deliver one message; block up to ``timeout`` (then socket.timeout)."""
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            channels = self._consuming
            for channel in channels:
                if channel._buffer and channel._deliver_one():
                    return
            fetched = False
            for channel in list(channels):
                if channel._fetch():
                    if channel._deliver_one():
                        return
                    fetched = True  # only unusable messages: look again at once
            if fetched and (deadline is None or monotonic() < deadline):
                continue
            wait = MAX_WAIT if deadline is None else min(deadline - monotonic(), MAX_WAIT)
            if wait <= 0:
                raise socket.timeout("timed out waiting for a Redis message")
            self._wait(channels, wait)

    def _wait(self, channels: list[RedisChannel], timeout: float) -> None:
        """Block until a waiter is readable or ``timeout`` passes."""
        now = monotonic()
        waiters = []
        poll = False
        for channel in channels:
            channel._flush_acks()  # never hold acks while blocking
            timeout = min(timeout, max(channel._next_housekeeping - now, 0))
            if not channel.qos.can_consume():
                poll = True
            elif channel._list_queues and not channel._tracking:
                poll = True
            waiter = channel._waiter
            if waiter.connected:
                if waiter.pending():
                    waiter.read()
                    return
                waiters.append(waiter)
        if poll:
            timeout = min(timeout, FALLBACK_POLL_INTERVAL)
        if not waiters:
            sleep(timeout)
            return
        if len(waiters) == 1:
            if waiters[0].wait(timeout):
                waiters[0].read()
            return
        with selectors.DefaultSelector() as selector:
            for waiter in waiters:
                selector.register(waiter.sock, selectors.EVENT_READ, waiter)
            for key, _ in selector.select(timeout):
                key.data.read()

    def close_connection(self, connection: Any) -> None:
        try:
            super().close_connection(connection)
        finally:
            self._refresher.stop()
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.disconnect()

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {"port": self.default_port, "hostname": "localhost"}


class SentinelChannel(Channel):
    """A channel whose Redis master is found through Sentinel.

    The URL lists the sentinels (``sentinel://h1:26379;sentinel://h2:26379``);
    the ``master_name`` transport option names the monitored master.
    """

    master_name: str | None = None
    min_other_sentinels = 0
    sentinel_kwargs: dict[str, Any] | None = None
    from_transport_options = Channel.from_transport_options + (
        "master_name", "min_other_sentinels", "sentinel_kwargs")

    def _get_pool(self) -> Any:
        from redis import sentinel

        if not self.master_name:
            raise ValueError("The sentinel transport needs the 'master_name' transport option "
                             "(the name of the master the sentinels monitor).")
        params = connparams(self)
        tls = params.get("connection_class") is self.connection_class_ssl
        for name in ("host", "port", "max_connections", "connection_class"):
            params.pop(name, None)
        client = self.connection.client
        assert client is not None
        sentinels = []
        for url in [*client.alt] or [f"sentinel://{client.hostname}:{client.port or ''}"]:
            parts = urlsplit(url)
            if parts.hostname:
                sentinels.append((parts.hostname, parts.port or self.connection.default_port))
        if not sentinels:
            sentinels.append((client.hostname or "127.0.0.1",
                              client.port or self.connection.default_port))
        manager = sentinel.Sentinel(  # type: ignore[no-untyped-call]
            sentinels, min_other_sentinels=self.min_other_sentinels,
            sentinel_kwargs=self.sentinel_kwargs, **params)
        master = manager.master_for(  # type: ignore[no-untyped-call]
            self.master_name, redis.Redis, ssl=tls)
        pool = master.connection_pool
        pool.max_connections = self.max_connections
        return pool


class SentinelTransport(Transport):
    """Redis Sentinel transport (``sentinel://``)."""

    Channel = SentinelChannel
    default_port = 26379


def _glob_escape(text: str) -> str:
    """Escape Redis glob characters so ``text`` matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
