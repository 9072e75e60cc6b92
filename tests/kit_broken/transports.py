"""Transports with one defect each, and the kit test that must catch it.

``Reference`` is kombu-dictq plus a store that can be unreachable (the host
name ``unreachable``); it passes the kit.  Every other class here changes
one thing, and :data:`CAUGHT_BY` names the kit test that fails because of
it.  The first eight are the defects a smoke-test suite missed, the last
six the ones it caught.
"""

from __future__ import annotations

import json
import time
from queue import Empty
from typing import Any

from kombu.transport import virtual
from kombu_dictq import transport as dictq


class ReferenceChannel(dictq.Channel):
    """kombu-dictq's channel, unchanged."""


class Reference(dictq.Transport):
    """kombu-dictq, with a store that is unreachable for the host ``unreachable``."""

    Channel = ReferenceChannel
    connection_errors = (*dictq.Transport.connection_errors, ConnectionRefusedError)

    def establish_connection(self) -> Any:
        if self.client.hostname == "unreachable":
            raise ConnectionRefusedError("the store at 'unreachable' refused the connection")
        return super().establish_connection()


def _variant(name: str, channel: type | None = None, **attrs: Any) -> type:
    """A :class:`Reference` subclass with ``channel`` and ``attrs``."""
    body: dict[str, Any] = dict(attrs)
    if channel is not None:
        body["Channel"] = channel
    return type(name, (Reference,), body)


# -- the eight a smoke-test suite missed --------------------------------------

class _PassiveAlwaysSucceeds(ReferenceChannel):
    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return True


class _DeleteKeepsMessages(ReferenceChannel):
    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        pass


class _RequeueAtTail(ReferenceChannel):
    def _put_at_head(self, queue: str, message: dict[str, Any]) -> None:
        self._put(queue, message)


class _NonAtomicGet(ReferenceChannel):
    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        with dictq._lock:
            messages = dictq._queues.get(queue)
            if not messages:
                raise Empty()
            message = messages[0]
        time.sleep(0.002)  # another consumer reads the same head meanwhile
        with dictq._lock:
            try:
                messages.remove(message)
            except ValueError:
                pass
        return message


def _wipe_on_connect(self: Reference) -> Any:
    with dictq._lock:
        dictq._queues.clear()
    return Reference.establish_connection(self)


class _MangledText(ReferenceChannel):
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        text = json.dumps(message, ensure_ascii=False).encode("latin-1", "replace")
        super()._put(queue, json.loads(text.decode("latin-1")), **kwargs)


class _Truncates64K(ReferenceChannel):
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        body = message.get("body")
        if isinstance(body, str) and len(body) > 65536:
            message = {**message, "body": body[:65536]}
        super()._put(queue, message, **kwargs)


def _always_connects(self: Reference) -> Any:
    return dictq.Transport.establish_connection(self)


# -- the six it caught --------------------------------------------------------

class _LifoGet(ReferenceChannel):
    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        with dictq._lock:
            messages = dictq._queues.get(queue)
            if not messages:
                raise Empty()
            return messages.pop()


class _SizeAlwaysZero(ReferenceChannel):
    def _size(self, queue: str) -> int:
        return 0


class _PurgeCountsZero(ReferenceChannel):
    def _purge(self, queue: str) -> int:
        super()._purge(queue)
        return 0


def _state_per_connection(self: Reference, client: Any, **kwargs: Any) -> None:
    dictq.Transport.__init__(self, client, **kwargs)
    self.state = virtual.BrokerState()  # bindings unknown to other connections


class _DropsUnackedOnClose(ReferenceChannel):
    def close(self) -> None:
        self.qos._delivered.clear()
        super().close()


class _DropsHeaders(ReferenceChannel):
    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        super()._put(queue, {**message, "headers": {}}, **kwargs)


BROKEN: dict[str, type] = {
    "passive-declare-always-succeeds": _variant("PassiveAlwaysSucceeds", _PassiveAlwaysSucceeds),
    "delete-keeps-messages": _variant("DeleteKeepsMessages", _DeleteKeepsMessages),
    "requeue-at-tail": _variant("RequeueAtTail", _RequeueAtTail),
    "non-atomic-get": _variant("NonAtomicGet", _NonAtomicGet),
    "wiped-on-reconnect": _variant("WipedOnReconnect", establish_connection=_wipe_on_connect),
    "mangles-non-ascii": _variant("MangledText", _MangledText),
    "truncates-over-64k": _variant("Truncates64K", _Truncates64K),
    "unreachable-reported-connected": _variant("AlwaysConnects",
                                               establish_connection=_always_connects),
    "lifo-get": _variant("LifoGet", _LifoGet),
    "size-always-zero": _variant("SizeAlwaysZero", _SizeAlwaysZero),
    "purge-counts-zero": _variant("PurgeCountsZero", _PurgeCountsZero),
    "state-per-connection": _variant("StatePerConnection", __init__=_state_per_connection),
    "drops-unacked-on-close": _variant("DropsUnackedOnClose", _DropsUnackedOnClose),
    "drops-headers": _variant("DropsHeaders", _DropsHeaders),
}

#: The kit test (class::name) that must fail for each broken transport.
CAUGHT_BY: dict[str, str] = {
    "passive-declare-always-succeeds":
        "TestTransportBasics::test_passive_declare_of_a_missing_queue_fails",
    "delete-keeps-messages": "TestTransportBasics::test_delete_removes_the_messages",
    "requeue-at-tail": "TestTransportDelivery::test_requeue_puts_the_message_back_at_the_head",
    "non-atomic-get": "TestTransportConcurrency::test_competing_consumers_in_threads",
    "wiped-on-reconnect": "TestTransportBasics::test_persistence_across_a_reconnect",
    "mangles-non-ascii": "TestTransportBodies::test_non_ascii_text_body_and_headers",
    "truncates-over-64k": "TestTransportBodies::test_large_binary_body",
    "unreachable-reported-connected":
        "TestTransportBasics::test_unreachable_broker_raises_a_connection_error",
    "lifo-get": "TestTransportDelivery::test_strict_fifo_within_a_priority",
    "size-always-zero": "TestTransportBasics::test_queue_declare_counts",
    "purge-counts-zero": "TestTransportBasics::test_purge_counts_and_empties",
    "state-per-connection": "TestTransportRouting::test_routing_across_two_connections",
    "drops-unacked-on-close":
        "TestTransportDelivery::test_unacked_restored_at_the_head_when_the_channel_closes",
    "drops-headers": "TestTransportDelivery::test_properties_round_trip",
}

__all__ = ("BROKEN", "CAUGHT_BY", "Reference")
