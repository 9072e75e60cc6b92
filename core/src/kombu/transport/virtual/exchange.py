"""Exchange routing for virtual transports.

Each exchange keeps a routing table: a list of ``(routing_key, pattern,
queue)`` triples, one per binding.  An exchange type turns a binding into a
triple (:meth:`ExchangeType.prepare_bind`) and a published routing key into
the queues it reaches (:meth:`ExchangeType.lookup`).

Topic matching follows AMQP 0-9-1: ``*`` matches exactly one word and ``#``
zero or more, so ``a.*`` matches ``a.b`` and not ``a.b.c``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kombu.utils.text import escape_regex  # noqa: F401 - kombu 5.x imports it from here

if TYPE_CHECKING:  # pragma: no cover
    from kombu.transport.virtual.base import Channel

__all__ = (
    "STANDARD_EXCHANGE_TYPES",
    "DirectExchange",
    "ExchangeType",
    "FanoutExchange",
    "HeadersExchange",
    "TopicExchange",
)

Table = Iterable[tuple[Any, Any, str]]


class ExchangeType:
    """Base class of exchange types."""

    type: str | None = None

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def lookup(self, table: Table, exchange: str, routing_key: str,
               default: str | None) -> Iterable[str]:
        """Return the queues ``routing_key`` reaches through ``table``."""
        raise NotImplementedError(f"{type(self).__name__} must implement lookup()")

    def prepare_bind(self, queue: str, exchange: str, routing_key: str,
                     arguments: dict[str, Any] | None) -> tuple[Any, Any, str]:
        """Return the routing-table entry for a binding."""
        return routing_key, None, queue

    def equivalent(self, prev: dict[str, Any], exchange: str, type: str, durable: bool,
                   auto_delete: bool, arguments: dict[str, Any] | None) -> bool:
        """Whether a redeclaration matches the exchange already declared."""
        return (type == prev["type"]
                and durable == prev["durable"]
                and auto_delete == prev["auto_delete"]
                and (arguments or {}) == (prev["arguments"] or {}))

    def deliver(self, message: dict[str, Any], exchange: str, routing_key: str,
                **kwargs: Any) -> None:
        _deliver_each(self.channel, self.channel._lookup(exchange, routing_key),
                      message, kwargs)


def _deliver_each(channel: Any, queues: Iterable[str], message: dict[str, Any],
                  kwargs: dict[str, Any]) -> None:
    """Put ``message`` on each queue; every queue after the first gets a copy
    with a delivery tag of its own.

    Stores that keep the dict itself never share one between queues, and
    each copy is acknowledged on its own (kombu gave every copy the same
    tag, so acking one copy, or holding two on one channel, lost the other).
    """
    put = channel._put
    first = True
    for queue in queues:
        if first:
            put(queue, message, **kwargs)
            first = False
        else:
            props = message["properties"]
            put(queue, {**message, "headers": dict(message.get("headers") or {}),
                        "properties": {**props, "delivery_info": dict(props["delivery_info"]),
                                       "delivery_tag": channel._next_delivery_tag()}},
                **kwargs)


class DirectExchange(ExchangeType):
    """Routes to the queues bound with exactly the message's routing key."""

    type = "direct"

    def lookup(self, table: Table, exchange: str, routing_key: str,
               default: str | None) -> Iterable[str]:
        return {queue for rkey, _, queue in table if rkey == routing_key}


class TopicExchange(ExchangeType):
    """Routes by dotted-word patterns (``*`` one word, ``#`` any number)."""

    type = "topic"
    _compiled: dict[str, re.Pattern[str]] = {}

    def lookup(self, table: Table, exchange: str, routing_key: str,
               default: str | None) -> Iterable[str]:
        # The pattern is recomputed from the binding key rather than taken
        # from the table, so bindings stored by other clients (kombu 5.x
        # writes its own regex into Redis) route with AMQP semantics too.
        compiled = self._compiled
        return {queue for rkey, _, queue in table
                if (compiled.get(rkey) or self._compile(rkey)).match(routing_key) is not None}

    def prepare_bind(self, queue: str, exchange: str, routing_key: str,
                     arguments: dict[str, Any] | None) -> tuple[Any, Any, str]:
        return routing_key, self.key_to_pattern(routing_key), queue

    @staticmethod
    def key_to_pattern(rkey: str) -> str:
        """The regular expression (as text) a binding key stands for."""
        return _topic_regex(rkey)

    @classmethod
    def _compile(cls, rkey: str) -> re.Pattern[str]:
        if len(cls._compiled) > 10_000:  # bound the cache
            cls._compiled.clear()
        pattern = cls._compiled[rkey] = re.compile(_topic_regex(rkey))
        return pattern


def _topic_regex(rkey: str) -> str:
    words = rkey.split(".")
    # '#.#' means the same as '#'.
    collapsed: list[str] = []
    for word in words:
        if word == "#" and collapsed and collapsed[-1] == "#":
            continue
        collapsed.append(word)
    if collapsed == ["#"]:
        return r"\A.*\Z"
    parts = [r"\A"]
    need_sep = False
    for word in collapsed:
        if word == "#":
            parts.append(r"(?:\.[^.]*)*" if need_sep else r"(?:[^.]*\.)*")
            continue
        if need_sep:
            parts.append(r"\.")
        parts.append(r"[^.]*" if word == "*" else re.escape(word))
        need_sep = True
    parts.append(r"\Z")
    return "".join(parts)


class FanoutExchange(ExchangeType):
    """Routes every message to every bound queue.

    Transports with a native broadcast (``channel.supports_fanout``) publish
    once with :meth:`Channel._put_fanout` instead of once per queue.
    """

    type = "fanout"

    def lookup(self, table: Table, exchange: str, routing_key: str,
               default: str | None) -> Iterable[str]:
        return {queue for _, _, queue in table}

    def deliver(self, message: dict[str, Any], exchange: str, routing_key: str,
                **kwargs: Any) -> None:
        channel = self.channel
        if channel.supports_fanout:
            channel._put_fanout(exchange, message, routing_key, **kwargs)
        else:
            super().deliver(message, exchange, routing_key, **kwargs)


class HeadersExchange(ExchangeType):
    """Routes by message headers against the binding arguments.

    A binding's ``x-match`` is ``all`` (the default: every other argument
    must equal the header of that name) or ``any`` (at least one must).
    """

    type = "headers"

    def prepare_bind(self, queue: str, exchange: str, routing_key: str,
                     arguments: dict[str, Any] | None) -> tuple[Any, Any, str]:
        args = dict(arguments or {})
        mode = str(args.pop("x-match", "all")).lower()
        if mode not in ("all", "any"):
            raise ValueError(f"x-match must be 'all' or 'any', not {mode!r}")
        wanted = tuple(sorted((k, v) for k, v in args.items() if not k.startswith("x-")))
        return routing_key, (mode, wanted), queue

    def lookup(self, table: Table, exchange: str, routing_key: str,
               default: str | None, headers: dict[str, Any] | None = None) -> Iterable[str]:
        headers = headers or {}
        missing = object()
        found = set()
        for _, (mode, wanted), queue in table:
            hits = [headers.get(k, missing) == v for k, v in wanted]
            if (all(hits) if mode == "all" else any(hits)) or not wanted:
                found.add(queue)
        return found

    def deliver(self, message: dict[str, Any], exchange: str, routing_key: str,
                **kwargs: Any) -> None:
        channel = self.channel
        try:
            table = channel.get_table(exchange)
        except KeyError:
            return
        queues = self.lookup(table, exchange, routing_key, None, message.get("headers"))
        _deliver_each(channel, queues, message, kwargs)


STANDARD_EXCHANGE_TYPES: dict[str, type[ExchangeType]] = {
    "direct": DirectExchange,
    "topic": TopicExchange,
    "fanout": FanoutExchange,
    "headers": HeadersExchange,
}
