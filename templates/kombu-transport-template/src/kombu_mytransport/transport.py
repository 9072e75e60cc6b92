"""The ``mytransport://`` transport, on kombu's virtual-transport API.

The store here is a dict of deques in this process; replace it with your
broker's client.  Every primitive below is called by kombu's virtual layer,
which does exchanges, routing, prefetch, acknowledgements and redelivery.
"""

from __future__ import annotations

import threading
from collections import deque
from queue import Empty
from typing import Any

from kombu.transport import virtual

from kombu_mytransport import __version__

# -- the store (replace with your broker) -------------------------------------
_queues: dict[str, deque[dict[str, Any]]] = {}
_lock = threading.Lock()


class Channel(virtual.Channel):
    """Stores and fetches messages; everything else is inherited."""

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        """``queue_declare``: create the queue if it does not exist."""
        with _lock:
            _queues.setdefault(queue, deque())

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        """``queue_declare(passive=True)``: whether the queue exists."""
        with _lock:
            return queue in _queues

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        """Append a message (a JSON-serialisable dict) to the queue's tail."""
        with _lock:
            _queues.setdefault(queue, deque()).append(message)

    def _put_at_head(self, queue: str, message: dict[str, Any]) -> None:
        """Requeued and restored messages go first, so redelivery keeps the order."""
        with _lock:
            _queues.setdefault(queue, deque()).appendleft(message)

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """Remove and return the head message atomically, or raise ``Empty``."""
        with _lock:
            messages = _queues.get(queue)
            if not messages:
                raise Empty()
            return messages.popleft()

    def _size(self, queue: str) -> int:
        with _lock:
            return len(_queues.get(queue, ()))

    def _purge(self, queue: str) -> int:
        """Remove every message; return how many there were."""
        with _lock:
            messages = _queues.get(queue)
            count = len(messages) if messages else 0
            if messages:
                messages.clear()
            return count

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        """``queue_delete``: the queue and its messages go."""
        with _lock:
            _queues.pop(queue, None)


class Transport(virtual.Transport):
    """``Connection('mytransport://')``."""

    Channel = Channel
    driver_type = driver_name = "mytransport"
    #: Seconds between polls of empty queues in drain_events.
    polling_interval = 0.01
    #: Errors that mean "the connection is unusable": ensure() retries them.
    #: Put your client's connection errors here (and its channel errors in
    #: channel_errors).
    connection_errors = (*virtual.Transport.connection_errors, OSError)
    #: Exchange types every connection can route (fanout works because the
    #: bindings below are shared by every connection).
    implements = virtual.Transport.implements.extend(
        exchange_type=frozenset(["direct", "topic", "fanout"]))
    #: Exchanges and bindings: one BrokerState shared by every connection,
    #: because the queues are shared too.  A store in another process keeps
    #: bindings there instead (see kombu-core's guide).
    global_state = virtual.BrokerState()

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.state = self.global_state

    def driver_version(self) -> str:
        return __version__
