"""Putting recorded messages back into their queues.

:meth:`Restorer.restore_visible` restores the messages whose records are
older than ``visibility_timeout`` (their consumers died: live ones refresh
the records of what they hold, see :mod:`kombu_redis.refresh`), every one
of them, batch after batch, under the ``unacked_mutex`` lock.  Every move
is a compare-and-swap (the RESTORE script), so a late ack, a refresh or a
second restorer never duplicates a message.  :meth:`Restorer.restore_tags`
also requeues rejected messages and gives back what a closing channel holds.
"""

from __future__ import annotations

import logging
from time import monotonic, time
from typing import Any, Callable
from uuid import uuid4

from kombu.utils.json import dumps, loads

from kombu_redis.keys import KeySchema
from kombu_redis.scripts import RESTORE, UNLOCK, Script

__all__ = ("DEFAULT_RESTORE_BATCH", "Restorer", "run_script")

logger = logging.getLogger("kombu.transport.redis")

#: Messages restored per batch when ``unacked_restore_limit`` is unset.
DEFAULT_RESTORE_BATCH = 100


def run_script(client: Any, script: Script, keys: list[Any], argv: list[Any]) -> Any:
    """Run ``script`` through a redis-py client (EVAL when the server lacks it)."""
    from redis import exceptions as rexc

    try:
        return client.evalsha(script.sha, len(keys), *keys, *argv)
    except rexc.NoScriptError:
        return client.eval(script.source, len(keys), *keys, *argv)


class Restorer:
    """Restores the records of one key schema.

    ``client()`` returns a thread-safe redis-py client (the shared pool);
    ``route(exchange, routing_key)`` names the queues a record of unknown
    origin goes back to; ``priority(payload)`` is a message's priority.
    """

    def __init__(self, client: Callable[[], Any], keys: KeySchema,
                 route: Callable[[str, str], list[str]],
                 priority: Callable[[dict[str, Any]], int],
                 visibility_timeout: float = 3600, mutex_expire: float = 300,
                 batch: int | None = None) -> None:
        self.client = client
        self.keys = keys
        self.route = route
        self.priority = priority
        self.visibility_timeout = visibility_timeout
        self.mutex_expire = mutex_expire
        self.batch = batch or DEFAULT_RESTORE_BATCH

    def restore_visible(self) -> None:
        """Restore every message whose visibility timeout expired (under the mutex)."""
        client = self.client()
        token = uuid4().hex
        mutex = self.keys.mutex
        if not client.set(mutex, token, nx=True, px=int(self.mutex_expire * 1000)):
            return
        try:
            deadline = monotonic() + self.mutex_expire / 2
            while monotonic() < deadline:
                tags, ceiling = self.overdue_tags(self.batch)
                if not tags:
                    break
                self.restore_tags(tags, ceiling=ceiling)
                if len(tags) < self.batch:
                    break
        finally:
            run_script(client, UNLOCK, [mutex], [token])

    def overdue_tags(self, limit: int) -> tuple[list[str], float]:
        """Up to ``limit`` tags whose visibility timeout expired, and the ceiling
        they were selected with (the restore moves only those still below it)."""
        ceiling = time() - self.visibility_timeout
        tags = self.client().zrangebyscore(self.keys.index, "-inf", ceiling, start=0, num=limit)
        return [bytes(t).decode() for t in tags], ceiling

    def restore_tags(self, tags: list[Any], leftmost: bool = False,
                     sources: dict[Any, str] | None = None,
                     raws: dict[Any, Any] | None = None,
                     ceiling: float | None = None) -> int:
        """Move recorded messages back to their queues (compare-and-swap).

        ``sources`` names the queue a message came from (else it is routed
        by its exchange and routing key, as kombu does); ``raws`` gives
        messages that were never delivered, which go back unchanged.  With
        ``ceiling`` only tags whose index score is still at most ``ceiling``
        move.  ``leftmost`` puts them at the back (a requeue), else at the
        front.  Returns how many moved.
        """
        client, keys = self.client(), self.keys
        records = client.hmget(keys.unacked, tags)
        argv: list[Any] = ["1" if leftmost else "0", "" if ceiling is None else repr(ceiling)]
        for tag, record in zip(tags, records):
            if record is None:
                argv += [tag, "", "", 0]
                continue
            try:
                payload, exchange, routing_key = loads(record)
                source = sources.get(tag) if sources else None
                queues = [source] if source else self.route(exchange, routing_key)
                pri = self.priority(payload)
                dests = [keys.queue_key(q, pri) for q in queues]
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
                             tag, exc, keys.unacked_rejected)
                data, dests = record, [keys.unacked_rejected]
            argv += [tag, record, data, len(dests), *dests]
        return int(run_script(client, RESTORE, [keys.unacked, keys.index], argv))

    def give_back(self, items: list[tuple[str, Any, Any]], broadcast: set[str]) -> None:
        """Put fetched, undelivered messages back where they came from, in order.

        ``items`` are ``(queue, raw, tag)`` as fetched, oldest first; a
        recorded one (``tag``) moves back with its record; an unrecorded one
        is pushed back unless its queue is in ``broadcast`` (PUB/SUB cannot
        take it back).
        """
        if not items:
            return
        raws: dict[Any, Any] = {}
        sources: dict[Any, str] = {}
        plain: list[tuple[str, Any]] = []
        for q, raw, tag in reversed(items):  # newest first: order is kept
            if not tag:
                if raw is not None and q not in broadcast:
                    plain.append((q, raw))
                continue
            raws[tag] = raw
            sources[tag] = q
        if raws:
            self.restore_tags(list(raws), sources=sources, raws=raws)
        for q, raw in plain:
            try:
                key = self.keys.queue_key(q, self.priority(loads(raw)))
            except (ValueError, TypeError, KeyError):
                key = self.keys.rejected_key(q)
            self.client().rpush(key, raw)
