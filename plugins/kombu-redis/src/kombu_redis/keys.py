"""The Redis key schema: every key, field and channel name of the wire format.

Pure functions and one value object (:class:`KeySchema`); nothing here
talks to Redis.  The names are kombu 5.x's, so that kombu and this transport
can share a Redis:

=========================  ===============================================
``queue``                  LIST of the queue's messages at priority step 0
``queue + sep + step``     LIST of priority step ``step`` (3, 6, 9, ...)
``queue + sep + rejected`` LIST of messages that are not kombu envelopes
``_kombu.binding.<x>``     SET of exchange ``x``'s bindings, members
                           ``routing_key + sep + pattern + sep + queue``
``_kombu.binding_perm...`` SET of the members of queues without x-expires
``_kombu.binding_dead...`` ZSET exchange -> deadline (ms) of its table
``unacked``                HASH record field -> ``[payload, exchange, rk]``
``unacked_index``          ZSET record field -> delivery time (s)
``unacked_mutex``          STRING, the restorers' lock
``/{db}.<x>[/<rk>]``       PUB/SUB channel of fanout exchange ``x``
=========================  ===============================================

``global_keyprefix`` prefixes every key and PUB/SUB channel.  A message
consumed with acknowledgement emulation is recorded under the field
``tag + "@" + queue`` (``+ "@" + n`` when that is taken; see
:func:`record_field`), written by the pop script.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Iterable, Sequence

__all__ = ("COPY_TAG_SEP", "DEFAULT_PRIORITY_STEPS", "LEGACY_TOPIC_WILDCARDS", "REJECTED", "SEP",
           "TOPIC_WILDCARDS", "KeySchema", "fanout_prefix", "glob_escape", "kombu_topic_pattern",
           "parse_binding_member", "record_field", "tracking_prefixes")

#: kombu's separator inside binding members and sub-queue names.
SEP = "\x06\x16"
#: kombu's default priority steps; step 0 is the bare queue name.
DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)
#: The suffix (after ``sep``) of the list unusable messages are moved to.
REJECTED = "rejected"
#: Joins a delivery tag and a queue name into the ``unacked`` field a copy is
#: recorded under (one publish routed to several queues carries one tag).
COPY_TAG_SEP = "@"
#: kombu 5.7's regular expressions for the wildcards of a topic binding key.
TOPIC_WILDCARDS = {"*": r"[^\.]+", "#": r".*?"}
#: What kombu wrote before 5.x's fix of ``*`` (read and removed, never written).
LEGACY_TOPIC_WILDCARDS = {"*": r".*?[^\.]", "#": r".*?"}


def kombu_topic_pattern(rkey: str, wildcards: dict[str, str] = TOPIC_WILDCARDS) -> str:
    """The regex kombu 5.7 stores in a topic binding member for ``rkey``.

    Characters other than letters, digits, ``.``, ``#`` and ``*`` are
    backslash-escaped, the key is split on dots, wildcard words are replaced
    by ``wildcards`` and the words are joined with ``\\.``, anchored.
    """
    escaped = "".join(c if c.isalnum() or c in ".#*" else ("\\000" if c == "\000" else "\\" + c)
                      for c in rkey)
    return "^" + r"\.".join(wildcards.get(word, word) for word in escaped.split(".")) + "$"


def glob_escape(text: str) -> str:
    """Escape Redis glob characters so ``text`` matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def fanout_prefix(option: bool | str, db: int) -> str:
    """The PUB/SUB channel prefix of the ``fanout_prefix`` option.

    True: ``/{db}.``; a string: that string; False: none.  Only the ``{db}``
    placeholder is replaced (other braces are kept as they are).
    """
    if not option:
        return ""
    prefix = option if isinstance(option, str) else "/{db}."
    return prefix.replace("{db}", str(db))


def record_field(tag: str, queue: str, n: int = 1) -> str:
    """The ``unacked`` field of the ``n``-th copy of ``tag`` consumed from ``queue``.

    The pop script takes the first free one of ``n = 1, 2, ...``; this is
    what it computes (the script is the writer).
    """
    base = f"{tag}{COPY_TAG_SEP}{queue}"
    return base if n == 1 else f"{base}{COPY_TAG_SEP}{n}"


def parse_binding_member(member: str | bytes, sep: str = SEP) -> tuple[str, str, str]:
    """``(routing_key, pattern, queue)`` of a binding member."""
    text = member.decode() if isinstance(member, bytes) else member
    parts = text.split(sep)
    if len(parts) != 3:
        raise ValueError(f"not a binding member (routing_key, pattern, queue joined by "
                         f"{sep!r}): {text!r}")
    return parts[0], parts[1], parts[2]


def tracking_prefixes(keys: Iterable[str]) -> tuple[str, ...]:
    """The ``CLIENT TRACKING ... PREFIX`` arguments covering ``keys``.

    Redis refuses overlapping prefixes, and ``a`` already covers ``ab``, so
    a key that starts with another one is left out.
    """
    kept: list[str] = []
    for name in sorted(set(keys)):
        if not any(name.startswith(k) for k in kept):
            kept.append(name)
    return tuple(kept)


class KeySchema:
    """The names one channel uses, from its transport options."""

    __slots__ = ("binding_deadlines", "fanout_patterns", "fanout_prefix", "index",
                 "keyprefix_permanent", "keyprefix_queue", "mutex", "prefix",
                 "priority_steps", "rejected_suffix", "sep", "unacked", "unacked_rejected")

    def __init__(self, prefix: str = "", sep: str = SEP,
                 priority_steps: Sequence[int] = DEFAULT_PRIORITY_STEPS,
                 unacked_key: str = "unacked", unacked_index_key: str = "unacked_index",
                 unacked_mutex_key: str = "unacked_mutex", fanout: str = "/0.",
                 fanout_patterns: bool = True,
                 keyprefix_queue: str = "_kombu.binding.%s",
                 keyprefix_permanent: str = "_kombu.binding_permanent.%s",
                 binding_deadlines: str = "_kombu.binding_deadlines") -> None:
        steps = sorted(int(s) for s in priority_steps)
        self.prefix = prefix
        self.sep = sep
        self.priority_steps = steps
        self.unacked = prefix + unacked_key
        self.index = prefix + unacked_index_key
        self.mutex = prefix + unacked_mutex_key
        self.binding_deadlines = prefix + binding_deadlines
        self.rejected_suffix = sep + REJECTED
        self.unacked_rejected = self.unacked + self.rejected_suffix
        self.fanout_prefix = fanout
        self.fanout_patterns = fanout_patterns
        self.keyprefix_queue = keyprefix_queue
        self.keyprefix_permanent = keyprefix_permanent

    # -- queues --------------------------------------------------------------
    def priority(self, n: int) -> int:
        """The priority step ``n`` falls in."""
        steps = self.priority_steps
        return steps[bisect(steps, n) - 1]

    def sub_queue(self, queue: str, pri: int) -> str:
        """The name of ``queue``'s list for priority ``pri`` (without the prefix)."""
        pri = self.priority(pri)
        return f"{queue}{self.sep}{pri}" if pri else queue

    def priority_suffix(self, pri: int) -> str:
        """What follows the queue name in the key of priority ``pri``."""
        step = self.priority(pri)
        return f"{self.sep}{step}" if step else ""

    def queue_key(self, queue: str, pri: int = 0) -> str:
        """The key of ``queue``'s list for priority ``pri``."""
        return self.prefix + self.sub_queue(queue, pri)

    def queue_keys(self, queue: str) -> list[str]:
        """The keys of all of ``queue``'s lists, highest priority (step 0) first."""
        prefix, sep = self.prefix, self.sep
        return [prefix + (f"{queue}{sep}{step}" if step else queue)
                for step in self.priority_steps]

    def rejected_key(self, queue: str) -> str:
        """The list unusable messages of ``queue`` are moved to."""
        return self.prefix + queue + self.rejected_suffix

    # -- bindings ------------------------------------------------------------
    def binding_key(self, exchange: str) -> str:
        """The SET of ``exchange``'s bindings."""
        return self.prefix + self.keyprefix_queue % (exchange,)

    def permanent_key(self, exchange: str) -> str:
        """The SET of ``exchange``'s bindings of queues without x-expires."""
        return self.prefix + self.keyprefix_permanent % (exchange,)

    def binding_key_prefixes(self) -> list[str]:
        """The binding-table and permanent-set keys without the exchange name."""
        return [self.prefix + self.keyprefix_queue % ("",),
                self.prefix + self.keyprefix_permanent % ("",)]

    def binding_member(self, routing_key: str | None, pattern: str | None, queue: str | None,
                       topic: bool = False) -> str:
        """The member kombu 5.7 writes for a binding (for a topic: its regex)."""
        if pattern and topic:
            pattern = kombu_topic_pattern(routing_key or "")
        return self.sep.join([routing_key or "", pattern or "", queue or ""])

    def binding_members(self, routing_key: str | None, pattern: str | None, queue: str | None,
                        topic: bool = False) -> list[str]:
        """Every member that may stand for a binding: kombu 5.7's and, for a
        topic, the regex older kombu versions wrote (removed on unbind)."""
        member = self.binding_member(routing_key, pattern, queue, topic)
        if pattern and topic:
            legacy = self.sep.join([routing_key or "", kombu_topic_pattern(
                routing_key or "", LEGACY_TOPIC_WILDCARDS), queue or ""])
            if legacy != member:
                return [member, legacy]
        return [member]

    # -- fanout --------------------------------------------------------------
    def publish_channel(self, exchange: str, routing_key: str | None) -> str:
        """The PUB/SUB channel a fanout message is published to."""
        if routing_key and self.fanout_patterns:
            return "".join([self.prefix, self.fanout_prefix, exchange, "/", routing_key])
        return "".join([self.prefix, self.fanout_prefix, exchange])

    def subscribe_patterns(self, exchange: str, routing_key: str | None) -> tuple[str, ...]:
        """The PSUBSCRIBE patterns of a queue bound to fanout ``exchange``.

        Prefixes and exchange match literally; a routing key (with
        ``fanout_patterns``) is a glob.  A queue bound without a routing key
        also subscribes to ``<exchange>/*``, so it gets messages published
        with any routing key.
        """
        topic = glob_escape(self.prefix + self.fanout_prefix + exchange)
        if not self.fanout_patterns:
            return (topic,)
        if routing_key:
            return (f"{topic}/{routing_key}",)
        return topic, topic + "/*"

    def fanout_exchange(self, channel: str | bytes) -> str:
        """The exchange a message received on PUB/SUB ``channel`` was published to."""
        text = channel.decode() if isinstance(channel, bytes) else channel
        return text[len(self.prefix) + len(self.fanout_prefix):].split("/", 1)[0]
