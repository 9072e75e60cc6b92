"""Acknowledgement emulation: the ``unacked`` hash, its index and restores.

A delivered message is recorded by the pop script (see
:mod:`kombu_redis.scripts`); this module acknowledges, requeues and restores
those records.  Restores are compare-and-swaps, so a late ack or a second
restorer never duplicates a message.  While a process holds messages (fetched
or delivered, not acknowledged), a thread of its own (:class:`Refresher`)
refreshes their index entries, even while a callback runs for longer than
``visibility_timeout``; so only the messages of processes that died (or lost
Redis) are restored after ``visibility_timeout`` (kombu restored those of
live consumers too, celery #5935), and every expired one is restored, batch
after batch (kombu restored a fixed number per pass, #164, #2558).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from itertools import chain
from time import monotonic, time
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from kombu.transport import virtual
from kombu.utils.json import dumps, loads

from kombu_redis.scripts import RESTORE, UNLOCK

if TYPE_CHECKING:  # pragma: no cover
    from kombu_redis.transport import Channel, Transport

__all__ = ("ACK_CHUNK", "QoS", "Refresher", "held_tags", "housekeeping", "overdue_tags",
           "refresh_held", "restore_tags", "restore_visible", "return_buffered",
           "route_for_restore")

logger = logging.getLogger("kombu.transport.redis")

#: Tags sent per command.
ACK_CHUNK = 1000


class QoS(virtual.QoS):
    """Acknowledgement emulation backed by the ``unacked`` hash and its index."""

    channel: Channel

    def ack(self, delivery_tag: Any) -> None:
        self.channel._ack(delivery_tag)
        self._quick_ack(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if requeue:
            message = self._delivered.get(delivery_tag)
            source = getattr(message, "_source_queue", None)
            restore_tags(self.channel, [delivery_tag], leftmost=True,
                         sources={delivery_tag: source} if source else None)
        else:
            self.channel._ack(delivery_tag)
        self._quick_ack(delivery_tag)

    def restore_unacked(self) -> list[tuple[BaseException, Any]]:
        """Put every unacknowledged message of this channel back at once."""
        self._flush()
        delivered, dirty = self._delivered, self._dirty
        tags: list[Any] = []
        sources: dict[Any, str] = {}
        while delivered:  # newest first, so the oldest ends up consumed first
            tag, message = delivered.popitem()
            if tag not in dirty:
                tags.append(tag)
                source = getattr(message, "_source_queue", None)
                if source:
                    sources[tag] = source
        if tags:
            try:
                restore_tags(self.channel, tags, sources=sources)
            except self.channel.connection.connection_errors as exc:
                logger.warning("Could not restore %d unacknowledged message(s) now (%r); "
                               "they return after visibility_timeout", len(tags), exc)
        return []

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        """Restore messages whose consumers let visibility_timeout pass."""
        restore_visible(self.channel)


#: The refresher's shortest period (seconds), whatever the visibility timeout.
MIN_REFRESH_PERIOD = 0.05
#: Seconds close waits for the refresher thread to end.
REFRESHER_JOIN_TIMEOUT = 5.0


def held_tags(channel: Channel) -> list[Any]:
    """Tags of the messages ``channel`` holds: fetched, being delivered, or
    delivered and not acked.

    Safe from another thread: the containers are copied in one C-level step
    (a concurrent change at worst leaves a tag for the next pass).  They are
    read in the order a message moves through them (the buffer, the tag
    being delivered, then qos), so a message moving on meanwhile is seen
    in the next one, never missed.
    """
    if not channel.ack_emulation or channel.closed:
        return []
    held: list[Any] = [tag for _, _, tag in list(channel._buffer) if tag]
    delivering = channel._delivering
    if delivering:
        held.append(delivering)
    qos = channel._qos
    if qos is not None:
        for _ in range(3):
            try:
                delivered = list(qos._delivered)
                dirty = set(qos._dirty)
                break
            except RuntimeError:  # changed size while copied: copy again
                continue
        else:
            delivered, dirty = [], set()
        held.extend(t for t in delivered if t not in dirty and t != delivering)
    return held


def refresh_held(channel: Channel, tags: list[Any], own: bool = False) -> None:
    """Set the index score of ``tags`` to now (only tags still recorded: XX)."""
    if not tags:
        return
    now = time()
    for i in range(0, len(tags), ACK_CHUNK):
        chunk = tags[i:i + ACK_CHUNK]
        if own:
            channel._call("ZADD", channel._index, "XX",
                          *chain.from_iterable((repr(now), t) for t in chunk))
        else:
            channel.client.zadd(channel._index, dict.fromkeys(chunk, now), xx=True)


def housekeeping(channel: Channel) -> None:
    """Refresh held messages and bindings; restore the messages of dead consumers."""
    interval = max(min(channel.unacked_restore_interval, channel.visibility_timeout / 4), 0.01)
    channel._next_housekeeping = monotonic() + interval
    if not channel._list_queues:
        return
    channel.maybe_refresh_binding_expiry()
    if not channel.ack_emulation:
        return
    refresh_held(channel, held_tags(channel), own=True)
    restore_visible(channel)


class Refresher:
    """Keeps the index entries of the messages a transport holds fresh.

    A daemon thread runs while a channel of the transport holds messages
    that are recorded as unacknowledged (fetched and not yet delivered, or
    delivered and not yet acknowledged).  Every quarter of the visibility
    timeout it sets their index score to the current time, so no restorer
    takes them while this process is alive, however long a callback runs
    or however long the application goes without draining events.  The
    thread ends when nothing is held (started again by the next fetch), when
    the transport closes, or when the transport is garbage collected; it
    does not survive a fork.  A process that is alive but hung keeps its
    messages; only a process that died (or lost Redis) has them restored.
    """

    _all: weakref.WeakSet[Refresher] = weakref.WeakSet()

    def __init__(self, transport: Transport) -> None:
        self._transport = weakref.ref(transport)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._all.add(self)

    @property
    def running(self) -> bool:
        """Whether the refresher thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def ensure(self) -> None:
        """Start the thread unless it runs (call after recording messages)."""
        with self._lock:
            thread = self._thread
            if thread is not None and thread.is_alive() and not self._stop.is_set():
                return
            self._stop = stop = threading.Event()
            self._thread = thread = threading.Thread(
                target=self._run, args=(stop,), name="kombu-redis-refresher", daemon=True)
            thread.start()

    def stop(self) -> None:
        """End the thread (bounded wait); a later ensure() starts a new one."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(REFRESHER_JOIN_TIMEOUT)

    def _period(self) -> float:
        """A quarter of the shortest visibility timeout of the transport's channels."""
        transport = self._transport()
        channels: list[Channel] = list(transport.channels) if transport else []  # type: ignore[arg-type]
        timeouts = [c.visibility_timeout for c in channels]
        return max(min(timeouts, default=0) / 4, MIN_REFRESH_PERIOD)

    def _work(self, stop: threading.Event) -> list[tuple[Channel, list[Any]]] | None:
        """The held tags of each channel; None (thread forgotten) if none holds any.

        Runs under the lock that ensure() takes, so a fetch that happens
        after this found nothing finds no thread and starts one.
        """
        transport = self._transport()
        with self._lock:
            if transport is None or stop.is_set():
                return None
            work = []
            channels: list[Channel] = list(transport.channels)  # type: ignore[arg-type]
            for channel in channels:
                tags = held_tags(channel)
                if tags:
                    work.append((channel, tags))
            if not work:
                if self._thread is threading.current_thread():
                    self._thread = None
                return None
            return work

    def _run(self, stop: threading.Event) -> None:
        failing = False
        while not stop.wait(self._period()):
            work = self._work(stop)
            if work is None:
                return
            for channel, tags in work:
                try:
                    refresh_held(channel, tags)
                except Exception as exc:  # noqa: BLE001 - tried again next period
                    (logger.debug if failing else logger.warning)(
                        "Could not refresh the visibility of %d held message(s): %r",
                        len(tags), exc)
                    failing = True
                else:
                    failing = False
            del work


def _after_fork_in_child() -> None:
    for refresher in list(Refresher._all):
        refresher._lock = threading.Lock()
        refresher._thread = None
        refresher._stop = threading.Event()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def restore_visible(channel: Channel) -> None:
    """Restore every message whose visibility timeout expired (under the mutex)."""
    client = channel.client
    token = uuid4().hex
    expire = int(channel.unacked_mutex_expire * 1000)
    if not client.set(channel._mutex, token, nx=True, px=expire):
        return
    try:
        batch = channel.unacked_restore_limit or 100
        deadline = monotonic() + channel.unacked_mutex_expire / 2
        while monotonic() < deadline:
            tags, ceiling = overdue_tags(channel, batch)
            if not tags:
                break
            restore_tags(channel, tags, ceiling=ceiling)
            if len(tags) < batch:
                break
    finally:
        channel._client_script(UNLOCK, [channel._mutex], [token])


def overdue_tags(channel: Channel, limit: int) -> tuple[list[str], float]:
    """Up to ``limit`` tags whose visibility timeout expired, and the ceiling
    they were selected with (the restore moves only those still below it)."""
    ceiling = time() - channel.visibility_timeout
    tags = channel.client.zrangebyscore(channel._index, "-inf", ceiling, start=0, num=limit)
    return [bytes(t).decode() for t in tags], ceiling  # type: ignore[arg-type]


def restore_tags(channel: Channel, tags: list[Any], leftmost: bool = False,
                 sources: dict[Any, str] | None = None,
                 raws: dict[Any, Any] | None = None,
                 ceiling: float | None = None) -> int:
    """Move unacknowledged messages back to their queues (compare-and-swap).

    ``sources`` names the queue a message came from (else it is routed by
    its exchange and routing key, as kombu does); ``raws`` gives messages
    that were never delivered, which go back unchanged.  With ``ceiling``
    only tags whose index score is still at most ``ceiling`` move.
    """
    records = channel.client.hmget(channel._unacked, tags)
    argv: list[Any] = ["1" if leftmost else "0", "" if ceiling is None else repr(ceiling)]
    for tag, record in zip(tags, records):
        if record is None:
            argv += [tag, "", "", 0]
            continue
        try:
            payload, exchange, routing_key = loads(record)
            source = sources.get(tag) if sources else None
            queues = [source] if source else route_for_restore(channel, exchange, routing_key)
            pri = channel._get_message_priority(payload)
            dests = [channel._key(q, pri) for q in queues]
            if raws and tag in raws:
                data = raws[tag]
            else:
                payload["headers"]["redelivered"] = True
                payload["properties"]["delivery_info"]["redelivered"] = True
                data = dumps(payload)
            if not dests:
                raise LookupError(f"no queue is bound to exchange {exchange!r} "
                                  f"with routing key {routing_key!r}")
        except (ValueError, TypeError, KeyError, LookupError) as exc:
            logger.error("Cannot restore message %r (%s); moved it to %r",
                         tag, exc, channel._unacked_rejected)
            data, dests = record, [channel._unacked_rejected]
        argv += [tag, record, data, len(dests), *dests]
    return int(channel._client_script(RESTORE, [channel._unacked, channel._index], argv))


def route_for_restore(channel: Channel, exchange: str, routing_key: str) -> list[str]:
    """The queues a record of unknown origin goes back to (kombu's routing)."""
    if not exchange:
        return [routing_key]
    table = channel.get_table(exchange)
    if exchange in channel.state.exchanges:
        kind = channel.typeof(exchange).type
    else:  # declared by another process: a pattern means a topic binding
        kind = "topic" if any(pattern for _, pattern, _ in table) else "direct"
    return list(channel.exchange_types[kind].lookup(table, exchange, routing_key, None))


def return_buffered(channel: Channel, queue: str | None = None) -> None:
    """Give back fetched but undelivered messages (of ``queue``, or all)."""
    buffer = channel._buffer
    keep: list[tuple[str, Any, Any]] = []
    back: list[tuple[str, Any, Any]] = []
    for item in buffer:
        (back if queue is None or item[0] == queue else keep).append(item)
    if not back:
        return
    buffer.clear()
    buffer.extend(keep)
    raws: dict[Any, Any] = {}
    sources: dict[Any, str] = {}
    plain: list[tuple[str, Any]] = []
    for q, raw, tag in reversed(back):  # newest first: order is kept
        if not tag:
            if raw is not None and q not in channel.active_fanout_queues:
                plain.append((q, raw))
            continue
        raws[tag] = raw
        sources[tag] = q
    if raws:
        restore_tags(channel, list(raws), sources=sources, raws=raws)
    for q, raw in plain:
        try:
            payload = loads(raw)
            key = channel._key(q, channel._get_message_priority(payload))
        except (ValueError, TypeError, KeyError):
            key = channel.global_keyprefix + q + channel._rejected_suffix
        channel.client.rpush(key, raw)
