"""Acknowledgement emulation: the ``unacked`` hash, its index and restores.

A delivered message is recorded by the pop script (see
:mod:`kombu_redis.scripts`); this module acknowledges, requeues and restores
those records.  Restores are compare-and-swaps, so a late ack or a second
restorer never duplicates a message.  A live channel refreshes the index
entries of the messages it holds, so only the messages of consumers that
died are restored after ``visibility_timeout`` (kombu restored those of
live consumers too, celery #5935), and every expired one is restored,
batch after batch (kombu restored a fixed number per pass, #164, #2558).
"""

from __future__ import annotations

import logging
from itertools import chain
from time import monotonic, time
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from kombu.transport import virtual
from kombu.utils.json import dumps, loads

from kombu_redis.scripts import RESTORE, UNLOCK

if TYPE_CHECKING:  # pragma: no cover
    from kombu_redis.transport import Channel

__all__ = ("ACK_CHUNK", "QoS", "housekeeping", "restore_tags", "restore_visible",
           "return_buffered", "route_for_restore")

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


def housekeeping(channel: Channel) -> None:
    """Refresh the index of held messages; restore those of dead consumers."""
    interval = max(min(channel.unacked_restore_interval, channel.visibility_timeout / 4), 0.01)
    channel._next_housekeeping = monotonic() + interval
    if not channel.ack_emulation or not channel._list_queues:
        return
    held: list[Any] = [t for t in channel.qos._delivered if t not in channel.qos._dirty]
    for _, raw, recorded in channel._buffer:
        if recorded:
            try:
                held.append(loads(raw)["properties"]["delivery_tag"])
            except (ValueError, TypeError, KeyError):
                pass
    if held:
        now = repr(time())
        for i in range(0, len(held), ACK_CHUNK):
            channel._call("ZADD", channel._index, "XX",
                          *chain.from_iterable((now, t) for t in held[i:i + ACK_CHUNK]))
    restore_visible(channel)


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
            ceil = time() - channel.visibility_timeout
            tags = client.zrangebyscore(channel._index, "-inf", ceil, start=0, num=batch)
            if not tags:
                break
            restore_tags(channel, [bytes(t).decode() for t in tags])  # type: ignore[arg-type]
            if len(tags) < batch:
                break
    finally:
        channel._client_script(UNLOCK, [channel._mutex], [token])


def restore_tags(channel: Channel, tags: list[Any], leftmost: bool = False,
                 sources: dict[Any, str] | None = None,
                 raws: dict[Any, Any] | None = None) -> int:
    """Move unacknowledged messages back to their queues (compare-and-swap).

    ``sources`` names the queue a message came from (else it is routed by
    its exchange and routing key, as kombu does); ``raws`` gives messages
    that were never delivered, which go back unchanged.
    """
    records = channel.client.hmget(channel._unacked, tags)
    argv: list[Any] = ["1" if leftmost else "0"]
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
    for q, raw, recorded in reversed(back):  # newest first: order is kept
        if not recorded:
            if raw is not None and q not in channel.active_fanout_queues:
                plain.append((q, raw))
            continue
        try:
            tag = loads(raw)["properties"]["delivery_tag"]
        except (ValueError, TypeError, KeyError):
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
