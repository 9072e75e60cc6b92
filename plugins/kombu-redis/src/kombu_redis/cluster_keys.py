"""The Redis Cluster key schema: one hash slot per queue, one per exchange (pure).

Redis Cluster runs a script or a multi-key command only when every key it
names hashes to one slot.  A key's slot is taken from its *hash tag*, the
text between the first ``{`` and the next ``}``; so every key of one queue
carries ``{queue}`` and every binding table of one exchange ``{exchange}``:

==============================  =============================================
``P{q}``                        LIST of queue ``q`` at priority step 0
``P{q} + sep + step``           LIST of priority step ``step`` (3, 6, 9, ...)
``P{q} + sep + rejected``       LIST of messages that are not kombu envelopes
``P unacked.{q}``               HASH of ``q``'s records (field -> ``[payload,
                                exchange, routing_key]``)
``P unacked_index.{q}``         ZSET record field -> delivery time (s)
``P unacked_mutex.{q}``         STRING, the lock of ``q``'s restorers
``P unacked.{q} + sep + rej..`` LIST of records that could not be restored
``P_kombu.binding.{x}``         SET of exchange ``x``'s bindings (members as
                                on one Redis)
``P_kombu.binding_permanent.{x}``  SET, as on one Redis
``P/{db}.x[/rk]``               PUB/SUB channel of fanout exchange ``x``
                                (classic PUBLISH reaches every node)
==============================  =============================================

``P`` is ``global_keyprefix``; the record keys use the ``unacked_key``,
``unacked_index_key`` and ``unacked_mutex_key`` options with ``.{q}``
appended.  Record fields are those of one Redis (``tag@queue``).  The
queue's lists share the prefix ``P{q}`` and its records do not, so the
client-side tracking prefix ``P{q}`` wakes consumers on pushes only.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.crc import key_slot

from kombu_redis.keys import DEFAULT_PRIORITY_STEPS, SEP, KeySchema

__all__ = ("ClusterKeySchema", "hash_tag", "slot_of")


def hash_tag(key: str | bytes) -> bytes:
    """The part of ``key`` Redis Cluster hashes (its hash tag, else all of it)."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            return data[start + 1:end]
    return data


def slot_of(key: str | bytes) -> int:
    """The hash slot (0-16383) of ``key``."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def _tagged(name: str, what: str) -> str:
    if name.startswith("}") or not name:
        raise ValueError(
            f"{what} name {name!r} cannot be used on Redis Cluster: its keys are "
            f"'{{{name}}}...', and a name that is empty or starts with '}}' leaves an empty hash "
            f"tag, so its keys would land in different slots. Rename the {what}.")
    return "{" + name + "}"


class ClusterKeySchema(KeySchema):
    """The key names of a channel on Redis Cluster (see the module docstring).

    The attributes ``unacked``, ``index``, ``mutex`` and ``unacked_rejected``
    of this schema are not used on the cluster; :meth:`for_queue` returns the
    schema whose record keys are those of one queue.
    """

    __slots__ = ("_queue_keys", "_views", "index_base", "mutex_base", "queue", "unacked_base")

    #: Queues whose views and keys are cached (a channel's queues; past this
    #: many the caches start over).
    CACHE_LIMIT = 4096

    def __init__(self, prefix: str = "", sep: str = SEP,
                 priority_steps: Sequence[int] = DEFAULT_PRIORITY_STEPS,
                 unacked_key: str = "unacked", unacked_index_key: str = "unacked_index",
                 unacked_mutex_key: str = "unacked_mutex", fanout: str = "/0.",
                 fanout_patterns: bool = True,
                 keyprefix_queue: str = "_kombu.binding.%s",
                 keyprefix_permanent: str = "_kombu.binding_permanent.%s",
                 binding_deadlines: str = "_kombu.binding_deadlines") -> None:
        super().__init__(prefix, sep, priority_steps, unacked_key, unacked_index_key,
                         unacked_mutex_key, fanout, fanout_patterns, keyprefix_queue,
                         keyprefix_permanent, binding_deadlines)
        self.unacked_base = unacked_key
        self.index_base = unacked_index_key
        self.mutex_base = unacked_mutex_key
        self.queue: str | None = None
        self._views: dict[str, ClusterKeySchema] = {}
        self._queue_keys: dict[str, list[str]] = {}

    def for_queue(self, queue: str) -> ClusterKeySchema:
        """This schema with the record keys of ``queue`` (all in its slot); cached."""
        view = self._views.get(queue)
        if view is None:
            if len(self._views) >= self.CACHE_LIMIT:
                self._views.clear()
            view = self._views[queue] = self._view(queue)
        return view

    def _view(self, queue: str) -> ClusterKeySchema:
        view = ClusterKeySchema(self.prefix, self.sep, self.priority_steps, self.unacked_base,
                                self.index_base, self.mutex_base, self.fanout_prefix,
                                self.fanout_patterns, self.keyprefix_queue,
                                self.keyprefix_permanent)
        tag = _tagged(queue, "queue")
        view.queue = queue
        view.unacked = f"{self.prefix}{self.unacked_base}.{tag}"
        view.index = f"{self.prefix}{self.index_base}.{tag}"
        view.mutex = f"{self.prefix}{self.mutex_base}.{tag}"
        view.unacked_rejected = view.unacked + self.rejected_suffix
        return view

    # -- queues --------------------------------------------------------------
    def queue_key(self, queue: str, pri: int = 0) -> str:
        keys = self._queue_keys.get(queue)
        if keys is None:
            keys = self.queue_keys(queue)
        steps = self.priority_steps
        return keys[steps.index(self.priority(pri)) if pri else 0] if steps[0] == 0 else \
            self.prefix + _tagged(queue, "queue") + self.priority_suffix(pri)

    def queue_keys(self, queue: str) -> list[str]:
        keys = self._queue_keys.get(queue)
        if keys is None:
            if len(self._queue_keys) >= self.CACHE_LIMIT:
                self._queue_keys.clear()
            base = self.prefix + _tagged(queue, "queue")
            sep = self.sep
            keys = self._queue_keys[queue] = [base + (f"{sep}{step}" if step else "")
                                              for step in self.priority_steps]
        return list(keys)

    def rejected_key(self, queue: str) -> str:
        return self.prefix + _tagged(queue, "queue") + self.rejected_suffix

    def tracking_prefix(self, queue: str) -> str:
        """The client-side tracking prefix of ``queue``'s lists."""
        return self.prefix + _tagged(queue, "queue")

    def record_keys(self, queue: str) -> list[str]:
        """The keys of ``queue``'s records: hash, index, lock."""
        view = self.for_queue(queue)
        return [view.unacked, view.index, view.mutex]

    def all_queue_keys(self, queue: str) -> list[str]:
        """Every key one queue's operations touch (one slot)."""
        return [*self.queue_keys(queue), self.rejected_key(queue), *self.record_keys(queue),
                self.for_queue(queue).unacked_rejected]

    # -- bindings ------------------------------------------------------------
    def binding_key(self, exchange: str) -> str:
        return self.prefix + self.keyprefix_queue % (_tagged(exchange, "exchange"),)

    def permanent_key(self, exchange: str) -> str:
        return self.prefix + self.keyprefix_permanent % (_tagged(exchange, "exchange"),)
