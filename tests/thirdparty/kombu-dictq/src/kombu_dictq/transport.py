"""The ``dictq://`` transport, written against kombu's virtual-transport API.

Queues are ``collections.deque`` objects in a module-level dict, guarded by
one lock, so every connection of the process shares them.  Exchanges and
bindings are shared the same way, through one :class:`BrokerState`.  The
virtual layer does routing, QoS and acknowledgement emulation; a channel
only stores and fetches messages.
"""

from __future__ import annotations

import threading
from collections import deque
from queue import Empty
from typing import Any

from kombu.transport import virtual

from kombu_dictq import __version__

_queues: dict[str, deque[dict[str, Any]]] = {}
_lock = threading.Lock()


class Channel(virtual.Channel):
    """Stores messages in the module's dict of deques."""

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        with _lock:
            _queues.setdefault(queue, deque())

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        with _lock:
            return queue in _queues

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        with _lock:
            _queues.setdefault(queue, deque()).append(message)

    def _put_at_head(self, queue: str, message: dict[str, Any]) -> None:
        # Requeued and restored messages go first, so redelivery keeps the order.
        with _lock:
            _queues.setdefault(queue, deque()).appendleft(message)

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        with _lock:
            messages = _queues.get(queue)
            if not messages:
                raise Empty()
            return messages.popleft()

    def _size(self, queue: str) -> int:
        with _lock:
            return len(_queues.get(queue, ()))

    def _purge(self, queue: str) -> int:
        with _lock:
            messages = _queues.get(queue)
            if not messages:
                return 0
            count = len(messages)
            messages.clear()
            return count

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        with _lock:
            _queues.pop(queue, None)


class Transport(virtual.Transport):
    """In-process transport: ``Connection('dictq://')``."""

    Channel = Channel
    driver_type = driver_name = "dictq"
    #: Seconds between polls of empty queues while draining events.
    polling_interval = 0.01
    #: Exchanges and bindings, shared by every connection of the process.
    global_state = virtual.BrokerState()

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.state = self.global_state

    def driver_version(self) -> str:
        return __version__
