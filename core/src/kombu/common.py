"""Common helpers: cached declarations, event loops, replies, broadcast queues."""

from __future__ import annotations

import os
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from copy import copy
from functools import partial
from itertools import count
from typing import TYPE_CHECKING, Any, Callable, ClassVar
from uuid import NAMESPACE_OID, uuid3, uuid4, uuid5

from kombu.abstract import AttrSpec
from kombu.entity import Exchange, Queue
from kombu.exceptions import ChannelError, RecoverableConnectionError
from kombu.log import get_logger
from kombu.serialization import registry as serializers
from kombu.utils.compat import get_gevent_concurrent_error  # noqa: F401 - kombu 5.x's path
from kombu.utils.uuid import uuid

if TYPE_CHECKING:  # pragma: no cover
    from kombu.connection import Connection
    from kombu.messaging import Consumer, Producer

__all__ = (
    "PREFETCH_COUNT_MAX",
    "QoS",
    "Broadcast",
    "collect_replies",
    "declaration_cached",
    "drain_consumer",
    "eventloop",
    "generate_oid",
    "ignore_errors",
    "insured",
    "itermessages",
    "maybe_declare",
    "oid_from",
    "send_reply",
    "uuid",
)

#: The largest prefetch count AMQP can express (an unsigned short).
PREFETCH_COUNT_MAX = 0xFFFF

logger = get_logger(__name__)

_node_id: int | None = None


def get_node_id() -> int:
    """A random number identifying this process's node (chosen once)."""
    global _node_id
    if _node_id is None:
        _node_id = uuid4().int
    return _node_id


def generate_oid(node_id: int, process_id: int, thread_id: int, instance: Any) -> str:
    """A UUID derived from a node, process, thread and object identity."""
    ent = f"{node_id:x}-{process_id:x}-{thread_id:x}-{id(instance):x}"
    try:
        return str(uuid3(NAMESPACE_OID, ent))
    except ValueError:  # MD5 disabled (FIPS mode)
        return str(uuid5(NAMESPACE_OID, ent))


def oid_from(instance: Any, threads: bool = True) -> str:
    """A UUID unique to ``instance`` in this process (and thread, if ``threads``)."""
    return generate_oid(get_node_id(), os.getpid(),
                        threading.get_ident() if threads else 0, instance)


class Broadcast(Queue):
    """A queue that receives every message of a fanout exchange.

    Each instance gets a queue of its own (``bcast.<uuid>``), so every
    consumer sees every message; the queue is deleted when its consumer goes
    (auto_delete).

    :param name: the fanout exchange's name (and the queue's :attr:`alias`).
    :param queue: the queue name, instead of a generated one.
    :param unique: add a uuid to ``queue`` even when it is given.
    :param auto_delete: delete the queue when unused (default ``True``).
    :param exchange: an exchange instead of ``Exchange(name, type='fanout')``.
    :param alias: the alias (default ``name``).
    """

    attrs: ClassVar[AttrSpec] = (*Queue.attrs, ("queue", None))

    def __init__(self, name: str | None = None, queue: str | None = None,
                 unique: bool = False, auto_delete: bool = True,
                 exchange: Exchange | None = None, alias: str | None = None,
                 **kwargs: Any) -> None:
        if unique:
            queue = f"{queue or 'bcast'}.{uuid()}"
        else:
            queue = queue or f"bcast.{uuid()}"
        super().__init__(
            alias=alias or name,
            queue=queue,
            name=queue,
            auto_delete=auto_delete,
            exchange=exchange if exchange is not None else Exchange(name, type="fanout"),  # type: ignore[arg-type]
            **kwargs,
        )


def _declared(channel: Any) -> set[Any] | None:
    connection = channel.connection
    client = getattr(connection, "client", None) if connection is not None else None
    return getattr(client, "declared_entities", None)


def declaration_cached(entity: Any, channel: Any) -> bool:
    """Whether ``entity`` was declared on ``channel``'s connection by :func:`maybe_declare`.

    (kombu 5.x always answers False: it caches hashes but looks up entities.)
    """
    declared = _declared(channel)
    return declared is not None and entity in declared


def maybe_declare(entity: Any, channel: Any = None, retry: bool = False,
                  **retry_policy: Any) -> bool:
    """Declare ``entity`` unless an equal entity was declared on this connection.

    The cache lives on the connection (``Connection.declared_entities``) and
    is emptied on reconnect.  Entities the broker may delete by itself
    (auto_delete, expiring) are declared every time.  Returns whether a
    declaration was sent.  With ``retry``, connection errors reconnect and
    retry as :meth:`Connection.ensure <kombu.Connection.ensure>` does,
    following ``retry_policy``.

    Unlike kombu 5.x, which caches by name only, an entity differing in any
    declared setting (type, routing key, arguments, ...) is declared again.
    """
    if retry:
        return _imaybe_declare(entity, channel, **retry_policy)
    return _maybe_declare(entity, channel)


#: What :func:`_declare_once` returns when the declaration was cached.
ALREADY_DECLARED: Any = object()


def _maybe_declare(entity: Any, channel: Any) -> bool:
    return _declare_once(entity, channel) is not ALREADY_DECLARED


def _declare_once(entity: Any, channel: Any) -> Any:
    """Declare ``entity`` unless cached.

    Returns :data:`ALREADY_DECLARED`, or after declaring, the entry added to
    the connection's cache (``None`` for entities that are not cached).
    """
    if channel is None or channel.connection is None:
        # Called again by ensure() after a reconnect, the entity was revived
        # onto the new channel: use that.
        if not entity.is_bound:
            if channel is not None:
                # The connection went away under the channel: a reconnect
                # (ensure/retry) repairs that.
                raise RecoverableConnectionError(
                    f"Cannot declare {entity!r}: its channel's connection is closed")
            raise ChannelError(f"Cannot declare {entity!r}: no channel given and the entity "
                               "is not bound to one")
        channel = entity.channel
        if channel.connection is None:
            raise RecoverableConnectionError(
                f"Cannot declare {entity!r}: its channel is closed")
    declared = None
    if entity.can_cache_declaration:
        declared = channel.connection.client.declared_entities
        if entity in declared:
            return ALREADY_DECLARED
    entity.declare(channel=channel)
    if declared is None:
        return None
    entry = copy(entity)
    declared.add(entry)
    return entry


def _imaybe_declare(entity: Any, channel: Any, **retry_policy: Any) -> bool:
    if not entity.is_bound:
        if not channel:
            raise ChannelError(f"Cannot declare {entity!r}: no channel given and the entity "
                               "is not bound to one")
        entity = entity.bind(channel)
    if not entity.channel.connection:
        raise RecoverableConnectionError(f"Cannot declare {entity!r}: its channel is closed")
    return entity.channel.connection.client.ensure(  # type: ignore[no-any-return]
        entity, _maybe_declare, **retry_policy)(entity, channel)


def drain_consumer(consumer: Consumer, limit: int | None = 1, timeout: float | None = None,
                   callbacks: list[Callable[[Any, Any], Any]] | None = None
                   ) -> Iterator[tuple[Any, Any]]:
    """Consume with ``consumer`` and yield ``(body, message)`` for each message.

    Drains at most ``limit`` events (``None``: no limit) waiting up to
    ``timeout`` seconds for each; ``callbacks`` are called too.  The
    consumer's callbacks are replaced.
    """
    acc: deque[tuple[Any, Any]] = deque()

    def on_message(body: Any, message: Any) -> None:
        acc.append((body, message))

    consumer.callbacks = [on_message, *(callbacks or ())]
    with consumer:
        client = consumer.channel.connection.client
        for _ in eventloop(client, limit=limit, timeout=timeout, ignore_timeouts=True):
            while acc:
                yield acc.popleft()


def itermessages(conn: Connection, channel: Any, queue: Queue, limit: int | None = 1,
                 timeout: float | None = None,
                 callbacks: list[Callable[[Any, Any], Any]] | None = None,
                 **kwargs: Any) -> Iterator[tuple[Any, Any]]:
    """Yield ``(body, message)`` from ``queue`` (see :func:`drain_consumer`).

    ``kwargs`` go to the :class:`~kombu.Consumer`.
    """
    return drain_consumer(conn.Consumer(queues=[queue], channel=channel, **kwargs),
                          limit=limit, timeout=timeout, callbacks=callbacks)


def eventloop(conn: Connection, limit: int | None = None, timeout: float | None = None,
              ignore_timeouts: bool = False) -> Iterator[Any]:
    """Call ``conn.drain_events(timeout=timeout)`` ``limit`` times (``None``: forever).

    Yields after each event.  :exc:`socket.timeout` propagates unless
    ``ignore_timeouts`` is set; then that round yields nothing and the loop
    goes on.  For example, to consume until idle for a second::

        for _ in eventloop(conn, timeout=1, ignore_timeouts=True):
            pass

    (kombu 5.x loops forever for ``limit=0`` and swallows timeouts when
    ``timeout`` is 0; here ``limit=0`` drains nothing and a zero timeout
    is a timeout like any other.)
    """
    rounds = count() if limit is None else range(limit)
    drain = conn.drain_events
    for _ in rounds:
        try:
            event = drain(timeout=timeout)
        except socket.timeout:
            if not ignore_timeouts:
                raise
        else:
            yield event


def send_reply(exchange: Exchange | str, req: Any, msg: Any, producer: Producer | None = None,
               retry: bool = False, retry_policy: dict[str, Any] | None = None,
               **props: Any) -> Any:
    """Reply to the request message ``req`` with the body ``msg``.

    The reply goes to ``req``'s ``reply_to`` queue (as the routing key of
    ``exchange``), with its ``correlation_id``, serializer and content
    encoding; ``props`` override those or add message properties.  A request
    whose content type is no serializer's (text, raw data) gets a reply
    serialized by default rules (kombu 5.x raises :exc:`KeyError`).
    """
    if producer is None:
        raise TypeError("send_reply() needs a producer to publish the reply with")
    options = {
        "routing_key": req.properties["reply_to"],
        "correlation_id": req.properties.get("correlation_id"),
        "serializer": serializers.type_to_name.get(req.content_type),
        "content_encoding": req.content_encoding,
        **props,
    }
    return producer.publish(msg, exchange=exchange, retry=retry, retry_policy=retry_policy,
                            **options)


def collect_replies(conn: Connection, channel: Any, queue: Queue, *args: Any,
                    **kwargs: Any) -> Iterator[Any]:
    """Yield the bodies of replies arriving on ``queue`` (see :func:`itermessages`).

    Messages are not acknowledged unless ``no_ack=False`` is given, in
    which case each is acknowledged before its body is yielded.
    """
    no_ack = kwargs.setdefault("no_ack", True)
    received = False
    try:
        for body, message in itermessages(conn, channel, queue, *args, **kwargs):
            if not no_ack:
                message.ack()
            received = True
            yield body
    finally:
        if received:
            channel.after_reply_message_received(queue.name)


def _ensure_errback(exc: BaseException, interval: float) -> None:
    logger.error("Connection error: %r. Retry in %ss\n", exc, interval, exc_info=True)


@contextmanager
def _ignore_errors(conn: Any) -> Iterator[None]:
    try:
        yield
    except conn.connection_errors + conn.channel_errors:
        pass


def ignore_errors(conn: Any, fun: Callable[..., Any] | None = None, *args: Any,
                  **kwargs: Any) -> Any:
    """Ignore ``conn``'s connection and channel errors.

    ``ignore_errors(conn, fun, *args, **kwargs)`` calls ``fun`` and returns
    its result (``None`` on such an error); ``with ignore_errors(conn):``
    guards a block.  ``conn`` is anything with ``connection_errors`` and
    ``channel_errors``.  Meant for cleanup, when the connection may be gone.
    """
    if fun:
        try:
            return fun(*args, **kwargs)
        except conn.connection_errors + conn.channel_errors:
            return None
    return _ignore_errors(conn)


def revive_connection(connection: Any, channel: Any,
                      on_revive: Callable[[Any], Any] | None = None) -> None:
    """Call ``on_revive(channel)`` if given (the revive hook of :func:`insured`)."""
    if on_revive:
        on_revive(channel)


def insured(pool: Any, fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            errback: Callable[[BaseException, float], Any] | None = None,
            on_revive: Callable[[Any], Any] | None = None, **opts: Any) -> Any:
    """Call ``fun(*args, channel=..., connection=..., **kwargs)``, retrying on connection errors.

    A connection is acquired from ``pool``; ``opts`` is the retry policy
    (see :meth:`Connection.ensure <kombu.Connection.ensure>`).
    """
    errback = errback or _ensure_errback
    with pool.acquire(block=True) as conn:
        conn.ensure_connection(errback=errback)
        channel = conn.default_channel
        revive = partial(revive_connection, conn, on_revive=on_revive)
        insured = conn.autoretry(fun, channel, errback=errback, on_revive=revive, **opts)
        retval, _ = insured(*args, **dict(kwargs, connection=conn))
        return retval


class QoS:
    """A prefetch count that threads change and one thread applies.

    :param callback: applies a new value, called as
        ``callback(prefetch_count=n)`` (e.g. ``consumer.qos``).
    :param initial_value: the starting prefetch count (0: no limit).
    :param max_prefetch: a ceiling for :meth:`increment_eventually`.

    Other threads call :meth:`increment_eventually` and
    :meth:`decrement_eventually`; the consuming thread calls :meth:`update`
    to apply the value.  A zero value (no limit) is never changed by them.
    """

    prev: int | None = None

    def __init__(self, callback: Callable[..., Any], initial_value: int | None,
                 max_prefetch: int | None = None) -> None:
        self.callback = callback
        self._mutex = threading.RLock()
        self.value = initial_value or 0
        self.max_prefetch = max_prefetch

    def increment_eventually(self, n: int = 1) -> int:
        """Raise the value by ``n`` (up to ``max_prefetch``); :meth:`update` applies it."""
        with self._mutex:
            if self.value:
                value = self.value + max(n, 0)
                if self.max_prefetch is not None and value > self.max_prefetch:
                    value = self.max_prefetch
                self.value = value
            return self.value

    def decrement_eventually(self, n: int = 1) -> int:
        """Lower the value by ``n`` (not below 1); :meth:`update` applies it."""
        with self._mutex:
            if self.value:
                self.value = max(self.value - n, 1)
            return self.value

    def set(self, pcount: int) -> int:
        """Apply ``pcount`` now, unless it is already applied.

        Values above :data:`PREFETCH_COUNT_MAX` disable the limit (0).
        """
        if pcount != self.prev:
            new_value = pcount
            if pcount > PREFETCH_COUNT_MAX:
                logger.warning("QoS: Disabled: prefetch_count exceeds %r", PREFETCH_COUNT_MAX)
                new_value = 0
            logger.debug("basic.qos: prefetch_count->%s", new_value)
            self.callback(prefetch_count=new_value)
            self.prev = pcount
        return pcount

    def update(self) -> int:
        """Apply the current value."""
        with self._mutex:
            return self.set(self.value)
