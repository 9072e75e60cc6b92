"""What a transport declares it can do, for the conformance kit.

A test that needs a capability the transport does not declare is skipped,
and the skip says which capability and why, so a run shows exactly what
was not checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = ("CAPABILITIES", "Requirements")

#: Every capability the kit knows, and what it means.
CAPABILITIES: Mapping[str, str] = MappingProxyType({
    "topic_exchange": "topic exchanges (also needs 'topic' in Transport.implements)",
    "fanout_exchange": "fanout exchanges, to consumers on other connections too "
                       "(also needs 'fanout' in Transport.implements)",
    "headers_exchange": "headers exchanges (also needs 'headers' in Transport.implements)",
    "priorities": "message priorities: higher (or, with priority_order='asc', lower) first, "
                  "FIFO within a priority",
    "requeue_at_head": "a requeued (rejected with requeue=True) message goes back to the head "
                       "of its queue",
    "restore_on_close": "unacknowledged messages go back to the head of their queue "
                        "when the channel closes",
    "queue_size": "queue_declare reports the message count",
    "redelivered_flag": "requeued and restored messages carry delivery_info['redelivered']",
    "persistence": "messages outlive the connection that published them (a reconnect "
                   "finds them)",
    "multiprocess": "connections in other processes share the queues (the store is not "
                    "in-process)",
    "basic_recover": "Channel.basic_recover(requeue=True) puts unacknowledged messages back",
    "ttl": "per-message expiration (publish(expiration=...)) drops expired messages",
    "unreachable": "a URL whose broker cannot be reached (fixture transport_unreachable_url, "
                   "or derived from Transport.default_port)",
})


@dataclass(frozen=True)
class Requirements:
    """The capabilities a transport declares; the kit skips the tests of the rest.

    Every field is a capability of :data:`CAPABILITIES`.  Switch one off with
    a reason, which the skipped tests show::

        Requirements.lacking(headers_exchange="Redis has no headers exchange")

    ``priority_order`` is ``'desc'`` (higher numbers first, as AMQP) or
    ``'asc'`` (lower numbers first, as kombu's Redis transport).
    """

    topic_exchange: bool = True
    fanout_exchange: bool = True
    headers_exchange: bool = True
    priorities: bool = True
    requeue_at_head: bool = True
    restore_on_close: bool = True
    queue_size: bool = True
    redelivered_flag: bool = True
    persistence: bool = True
    multiprocess: bool = True
    basic_recover: bool = True
    ttl: bool = False
    unreachable: bool = True
    priority_order: Literal["desc", "asc"] = "desc"
    #: Why a capability is off, by capability name.
    reasons: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.reasons) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"Requirements: unknown capabilities {sorted(unknown)}; "
                             f"known: {', '.join(CAPABILITIES)}")
        if self.priority_order not in ("desc", "asc"):
            raise ValueError(f"Requirements: priority_order must be 'desc' or 'asc', "
                             f"not {self.priority_order!r}")

    @classmethod
    def lacking(cls, **reasons: str) -> Requirements:
        """Every capability declared but those named, each off for the reason given."""
        return cls().without(**reasons)

    def without(self, **reasons: str) -> Requirements:
        """A copy with each named capability switched off, for the reason given."""
        unknown = set(reasons) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"Requirements.without: unknown capabilities {sorted(unknown)}; "
                             f"known: {', '.join(CAPABILITIES)}")
        changes: dict[str, Any] = dict.fromkeys(reasons, False)
        return dataclasses.replace(self, reasons={**self.reasons, **reasons}, **changes)

    def with_(self, *names: str, **options: Any) -> Requirements:
        """A copy with each named capability switched on (and other fields set)."""
        unknown = set(names) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"Requirements.with_: unknown capabilities {sorted(unknown)}")
        reasons = {k: v for k, v in self.reasons.items() if k not in names}
        changes: dict[str, Any] = {**dict.fromkeys(names, True), **options}
        return dataclasses.replace(self, reasons=reasons, **changes)

    def declares(self, name: str) -> bool:
        """Whether capability ``name`` is declared."""
        if name not in CAPABILITIES:
            raise KeyError(f"unknown capability {name!r}; known: {', '.join(CAPABILITIES)}")
        return bool(getattr(self, name))

    def reason(self, name: str) -> str:
        """Why capability ``name`` is off (a generic reason when none was given)."""
        return self.reasons.get(name, "not declared in the transport's Requirements")
