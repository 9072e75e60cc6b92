"""The in-process transport: ``memory://``.

Every connection of a process to the same virtual host
(``memory://localhost/<vhost>``, ``/`` by default) shares one broker: its
exchanges, bindings and queues.  Queues honour message priorities (0..9,
higher first, FIFO within a priority).  A consumer blocks in
:meth:`Transport.drain_events` until a producer in any thread publishes,
an acknowledgement frees prefetch room, or the timeout passes.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Any

from kombu.transport import virtual
from kombu.transport.virtual.base import BrokerState, Empty

from kombu_memory import __version__

__all__ = ("Broker", "Channel", "QoS", "Transport", "broker_for")

#: The longest single wait inside drain_events(timeout=None); the loop
#: re-checks its state after each, so a missed wake-up costs at most this.
_MAX_WAIT = 1.0


class _Queue:
    """One queue: FIFO per priority, higher priorities served first."""

    __slots__ = ("items", "by_priority")

    def __init__(self) -> None:
        self.items: deque[dict[str, Any]] = deque()
        self.by_priority: dict[int, deque[dict[str, Any]]] | None = None

    def __len__(self) -> int:
        n = len(self.items)
        if self.by_priority:
            n += sum(map(len, self.by_priority.values()))
        return n

    def put(self, message: dict[str, Any], priority: int, head: bool = False) -> None:
        if priority:
            buckets = self.by_priority
            if buckets is None:
                buckets = self.by_priority = {}
            bucket = buckets.get(priority)
            if bucket is None:
                bucket = buckets[priority] = deque()
        else:
            bucket = self.items
        if head:
            bucket.appendleft(message)
        else:
            bucket.append(message)

    def pop(self) -> dict[str, Any] | None:
        buckets = self.by_priority
        if buckets:
            top = max(buckets)
            bucket = buckets[top]
            message = bucket.popleft()
            if not bucket:
                del buckets[top]
            return message
        items = self.items
        return items.popleft() if items else None

    def clear(self) -> int:
        n = len(self)
        self.items.clear()
        self.by_priority = None
        return n


class Broker:
    """The state of one in-process virtual host."""

    def __init__(self) -> None:
        self.state = BrokerState()
        self.queues: dict[str, _Queue] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        #: Bumped on every event a waiting consumer may care about.
        self.version = 0
        self.waiting = 0

    def wake(self) -> None:
        """Wake consumers waiting in drain_events (call with the lock held)."""
        self.version += 1
        if self.waiting:
            self.changed.notify_all()

    def clear(self) -> None:
        with self.lock:
            self.state.clear()
            self.queues.clear()
            self.wake()


_brokers: dict[str, Broker] = {}
_brokers_lock = threading.Lock()


def broker_for(virtual_host: str | None) -> Broker:
    """The broker of ``virtual_host`` (created on first use)."""
    vhost = virtual_host or "/"
    broker = _brokers.get(vhost)
    if broker is None:
        with _brokers_lock:
            broker = _brokers.setdefault(vhost, Broker())
    return broker


class QoS(virtual.QoS):
    """Acks from other threads wake a consumer blocked on its prefetch limit."""

    channel: Channel

    def ack(self, delivery_tag: Any) -> None:
        self._quick_ack(delivery_tag)
        if self.prefetch_count:
            broker = self.channel.broker
            with broker.lock:
                broker.wake()


class Channel(virtual.Channel):
    """A channel on the in-process broker."""

    QoS = QoS
    #: Messages never leave the process, so bodies are stored as they are.
    body_encoding = None
    exchange_types = dict(virtual.STANDARD_EXCHANGE_TYPES)

    def __init__(self, connection: Transport, **kwargs: Any) -> None:
        self.broker: Broker = connection.broker
        super().__init__(connection, **kwargs)

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        broker = self.broker
        if queue not in broker.queues:
            with broker.lock:
                broker.queues.setdefault(queue, _Queue())

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return queue in self.broker.queues

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        priority = message["properties"].get("priority") or 0
        if priority:
            priority = self._get_message_priority(message)
        broker = self.broker
        with broker.lock:
            q = broker.queues.get(queue)
            if q is None:
                q = broker.queues[queue] = _Queue()
            q.put(message, priority)
            broker.version += 1
            if broker.waiting:
                broker.changed.notify_all()

    def _put_at_head(self, queue: str, message: dict[str, Any]) -> None:
        broker = self.broker
        with broker.lock:
            q = broker.queues.get(queue)
            if q is None:
                q = broker.queues[queue] = _Queue()
            q.put(message, self._get_message_priority(message), head=True)
            broker.wake()

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        broker = self.broker
        with broker.lock:
            q = broker.queues.get(queue)
            message = q.pop() if q is not None else None
        if message is None:
            raise Empty()
        return message

    def _size(self, queue: str) -> int:
        q = self.broker.queues.get(queue)
        return len(q) if q is not None else 0

    def _purge(self, queue: str) -> int:
        with self.broker.lock:
            q = self.broker.queues.get(queue)
            return q.clear() if q is not None else 0

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        with self.broker.lock:
            self.broker.queues.pop(queue, None)

    def _restore(self, message: virtual.Message) -> None:
        """Put an unacknowledged message back at the head of its queue."""
        source = getattr(message, "_source_queue", None)
        if not source:
            super()._restore(message)
            return
        payload = message.serializable()
        payload["redelivered"] = True
        self._put_at_head(source, payload)


class Transport(virtual.Transport):
    """In-process transport: thread-safe, blocking, no polling."""

    Channel = Channel
    driver_type = "memory"
    driver_name = "memory"
    polling_interval = None
    implements = virtual.Transport.implements.extend(
        asynchronous=False,
        exchange_type=frozenset(["direct", "topic", "fanout", "headers"]),
        heartbeats=False,
    )

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.broker = broker_for(client.virtual_host if client is not None else None)
        self.state = self.broker.state
        self._rotation = 0

    def driver_version(self) -> str:
        return __version__

    def _deliver_one(self) -> bool:
        """Hand one ready message to its consumer; False if there was none."""
        for channel in self.channels:
            queues = channel._active_queues
            if not queues or not channel._consumers:
                continue
            if channel._qos is not None and not channel._qos.can_consume():
                continue
            n = len(queues)
            start = self._rotation % n if n > 1 else 0
            for i in range(n):
                queue = queues[(start + i) % n] if n > 1 else queues[0]
                try:
                    message = channel._get(queue)
                except Empty:
                    continue
                self._rotation = start + i + 1
                self._deliver(message, queue)
                return True
        return False

    def drain_events(self, connection: Any,  # type: ignore[override]
                     timeout: float | None = None) -> None:
        """Deliver one message; wait up to ``timeout`` seconds for one.

        Raises :exc:`socket.timeout` when nothing arrived in time.
        """
        broker = self.broker
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            seen = broker.version
            if self._deliver_one():
                return
            with broker.lock:
                if broker.version != seen:
                    continue
                if deadline is None:
                    wait = _MAX_WAIT
                else:
                    wait = deadline - monotonic()
                    if wait <= 0:
                        raise socket.timeout("timed out waiting for a message")
                    wait = min(wait, _MAX_WAIT)
                broker.waiting += 1
                try:
                    broker.changed.wait(wait)
                finally:
                    broker.waiting -= 1


if TYPE_CHECKING:  # pragma: no cover - mypy checks these; they never run
    from kombu.transport.protocols import ChannelProtocol, TransportErrors

    def _keeps_the_channel_contract(channel: Channel) -> ChannelProtocol:
        return channel

    def _declares_its_errors(transport: Transport) -> TransportErrors:
        return transport
