"""Process mailboxes: remote control of named nodes (Celery's ``inspect``/``control``).

A :class:`Mailbox` publishes commands to the exchange ``<namespace>.pidbox``
(``direct`` or ``fanout``); every :class:`Node` consumes from its own queue
``<hostname>.<namespace>.pidbox`` bound to it, runs the handler named by the
command and, when asked to, replies through the direct exchange
``reply.<namespace>.pidbox`` to the caller's queue
``<oid>.reply.<namespace>.pidbox``.  Message bodies and headers are kombu
5.x's, so kombu 5.x clients and nodes can talk to these.
"""

from __future__ import annotations

import socket
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from copy import copy
from time import monotonic, time
from typing import Any, TypeVar

from .clocks import LamportClock
from .common import maybe_declare, oid_from
from .entity import Exchange, Queue
from .exceptions import InconsistencyError
from .log import get_logger
from .matcher import match
from .messaging import Consumer, Producer
from .messaging import Consumer as _Consumer
from .utils.functional import maybe_evaluate, reprcall
from .utils.objects import cached_property
from .utils.uuid import uuid

__all__ = ("Mailbox", "Node")

#: Seconds an unused reply queue lives on brokers that expire queues.
REPLY_QUEUE_EXPIRES = 10

W_PIDBOX_IN_USE = """\
Another node named {node.hostname} consumes from this mailbox queue: two
processes with one node name would take each other's commands.  Stop the
other node (or wait until its connection is gone), or give each node on
this host a name of its own.
"""

logger = get_logger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])
Handler = Callable[..., Any]


class Node:
    """One named endpoint of a :class:`Mailbox`: runs the commands sent to it."""

    #: Name of the node (the queue is ``<hostname>.<namespace>.pidbox``).
    hostname: str | None = None
    #: The mailbox this node belongs to.
    mailbox: Mailbox | None = None
    #: Command name -> ``handler(state, **arguments)``.
    handlers: dict[str, Handler] | None = None
    #: Passed as the first argument to every handler.
    state: Any = None
    #: Channel the node consumes and replies on.
    channel: Any = None

    def __init__(self, hostname: str, state: Any = None, channel: Any = None,
                 handlers: dict[str, Handler] | None = None,
                 mailbox: Mailbox | None = None) -> None:
        if mailbox is None:
            raise TypeError("Node needs its mailbox: create nodes with Mailbox.Node(hostname) "
                            "or pass mailbox=")
        self.channel = channel
        self.mailbox = mailbox
        self.hostname = hostname
        self.state = state
        self.adjust_clock = mailbox.clock.adjust
        self.handlers = {} if handlers is None else handlers

    def Consumer(self, channel: Any = None, no_ack: bool = True, accept: Any = None,
                 **options: Any) -> _Consumer:
        """A consumer of this node's queue (not started)."""
        mailbox = self._mailbox
        queue = mailbox.get_queue(self.hostname or "")

        def verify_exclusive(name: str, messages: int, consumers: int) -> None:
            if consumers:
                warnings.warn(W_PIDBOX_IN_USE.format(node=self), stacklevel=2)

        queue.on_declared = verify_exclusive
        conn = mailbox.connection
        channel_errors: tuple[type[BaseException], ...] = conn.channel_errors if conn else ()
        try:
            return Consumer(channel or self.channel, [queue], no_ack=no_ack,
                            accept=mailbox.accept if accept is None else accept, **options)
        except channel_errors as exc:
            if getattr(exc, "code", 0) == 405:  # RESOURCE_LOCKED: another node's exclusive queue
                raise InconsistencyError(W_PIDBOX_IN_USE.format(node=self)) from exc
            raise

    @property
    def _mailbox(self) -> Mailbox:
        assert self.mailbox is not None  # set in __init__
        return self.mailbox

    def handler(self, fun: _F) -> _F:
        """Decorator: register ``fun`` as the handler of the command ``fun.__name__``."""
        assert self.handlers is not None
        self.handlers[fun.__name__] = fun
        return fun

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        """Log a command that could not be decoded (it is dropped)."""
        logger.error("Cannot decode message: %r", exc, exc_info=True)

    def listen(self, channel: Any = None, callback: Callable[..., Any] | None = None) -> _Consumer:
        """Start consuming commands; returns the consumer (cancel it to stop)."""
        consumer = self.Consumer(channel=channel,
                                 callbacks=[callback or self.handle_message],
                                 on_decode_error=self.on_decode_error)
        consumer.consume()
        return consumer

    def dispatch(self, method: str, arguments: dict[str, Any] | None = None,
                 reply_to: dict[str, str] | None = None, ticket: str | None = None,
                 **kwargs: Any) -> Any:
        """Run the command ``method``; reply to ``reply_to`` if given.

        A handler that raises replies ``{'error': repr(exc)}``.
        """
        arguments = arguments or {}
        logger.debug("pidbox received method %s [reply_to:%s ticket:%s]",
                     reprcall(method, (), kwargs=arguments), reply_to, ticket)
        handle = self.handle_call if reply_to else self.handle_cast
        try:
            reply = handle(method, arguments)
        except SystemExit:
            raise
        except Exception as exc:
            logger.error("pidbox command error: %r", exc, exc_info=True)
            reply = {"error": repr(exc)}
        if reply_to:
            self.reply({self.hostname: reply}, exchange=reply_to["exchange"],
                       routing_key=reply_to["routing_key"], ticket=ticket)
        return reply

    def handle(self, method: str, arguments: dict[str, Any] | None = None) -> Any:
        """Call ``handlers[method](state, **arguments)``; :exc:`KeyError` if unknown."""
        assert self.handlers is not None
        return self.handlers[method](self.state, **(arguments or {}))

    def handle_call(self, method: str, arguments: dict[str, Any] | None) -> Any:
        """Run a command whose caller waits for the reply."""
        return self.handle(method, arguments)

    def handle_cast(self, method: str, arguments: dict[str, Any] | None) -> Any:
        """Run a command sent without a reply address."""
        return self.handle(method, arguments)

    def handle_message(self, body: dict[str, Any], message: Any = None) -> Any:
        """Dispatch ``body`` if it is addressed to this node.

        It is when it names this node in ``destination``, or its
        ``pattern`` matches the hostname with its ``matcher``, or it names
        no one (a broadcast).
        """
        if message is not None:
            self.adjust_clock((message.headers or {}).get("clock") or 0)
        destination = body.get("destination")
        pattern = body.get("pattern")
        matcher = body.get("matcher")
        hostname = self.hostname or ""
        if destination:
            addressed = hostname in destination
        elif pattern and matcher:
            addressed = match(hostname, pattern, matcher)
        else:
            addressed = True
        if addressed:
            return self.dispatch(**body)
        return None

    dispatch_from_message = handle_message

    def reply(self, data: Any, exchange: str, routing_key: str, ticket: str | None,
              **kwargs: Any) -> None:
        """Publish ``data`` to the caller's reply queue."""
        mailbox = self._mailbox
        mailbox._publish_reply(data, exchange, routing_key, ticket, channel=self.channel,
                               serializer=mailbox.serializer)


class Mailbox:
    """A named mailbox: send commands to its nodes and collect their replies.

    Bind it to a connection with ``mailbox(connection)`` (a copy) or
    ``connection=``.  ``type`` is the command exchange's type: ``'direct'``
    or ``'fanout'`` (Celery uses fanout).
    """

    node_cls = Node
    exchange_fmt = "%s.pidbox"
    reply_exchange_fmt = "reply.%s.pidbox"

    #: Name of the application (``celery``).
    namespace: str | None = None
    #: Connection, when bound.
    connection: Any = None
    #: Type of the command exchange.
    type = "direct"
    #: The command exchange.
    exchange: Exchange | None = None
    #: The exchange replies are sent to.
    reply_exchange: Exchange | None = None
    #: Content types (or serializer names) accepted in commands and replies.
    accept: Any = ["json"]
    #: Serializer of commands and replies (``None``: the producer's default).
    serializer: str | None = None

    def __init__(self, namespace: str, type: str = "direct", connection: Any = None,
                 clock: LamportClock | None = None, accept: Any = None,
                 serializer: str | None = None, producer_pool: Any = None,
                 queue_ttl: float | None = None, queue_expires: float | None = None,
                 queue_durable: bool = False, queue_exclusive: bool = True,
                 reply_queue_ttl: float | None = None,
                 reply_queue_expires: float | None = 10.0) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"Mailbox namespace must be a non-empty string, got {namespace!r}")
        if not isinstance(type, str) or not type:
            raise ValueError(f"Mailbox type must be an exchange type such as 'direct' or "
                             f"'fanout', got {type!r}")
        if queue_exclusive and queue_durable:
            raise ValueError(
                "queue_exclusive=True and queue_durable=True contradict each other: "
                "an exclusive queue is deleted with its connection; choose one.")
        self.namespace = namespace
        self.connection = connection
        self.type = type
        self.clock = LamportClock() if clock is None else clock
        self.exchange = self._get_exchange(namespace, type)
        self.reply_exchange = self._get_reply_exchange(namespace)
        self.unclaimed: defaultdict[str, deque[Any]] = defaultdict(deque)
        self.accept = self.accept if accept is None else accept
        self.serializer = self.serializer if serializer is None else serializer
        self.queue_ttl = queue_ttl
        self.queue_expires = queue_expires
        self.queue_durable = queue_durable
        self.queue_exclusive = queue_exclusive
        self.reply_queue_ttl = reply_queue_ttl
        self.reply_queue_expires = reply_queue_expires
        self._producer_pool = producer_pool

    def __call__(self, connection: Any) -> Mailbox:
        """A copy of this mailbox bound to ``connection``."""
        bound = copy(self)
        bound.connection = connection
        return bound

    def clone(self) -> Mailbox:
        """A copy of this mailbox (same settings, clock and connection)."""
        return copy(self)

    def Node(self, hostname: str | None = None, state: Any = None, channel: Any = None,
             handlers: dict[str, Handler] | None = None) -> Node:
        """A node of this mailbox (``hostname`` defaults to this host's name)."""
        return self.node_cls(hostname or socket.gethostname(), state, channel, handlers,
                             mailbox=self)

    # -- sending -------------------------------------------------------------
    def call(self, destination: Sequence[str], command: str,
             kwargs: dict[str, Any] | None = None, timeout: float | None = None,
             callback: Callable[[Any], Any] | None = None, channel: Any = None) -> Any:
        """Send ``command`` to the nodes ``destination`` and return their replies."""
        return self._broadcast(command, kwargs or {}, destination, reply=True,
                               timeout=timeout, callback=callback, channel=channel)

    def cast(self, destination: Sequence[str], command: str,
             kwargs: dict[str, Any] | None = None) -> None:
        """Send ``command`` to the nodes ``destination`` without waiting for replies."""
        self._broadcast(command, kwargs or {}, destination, reply=False)

    def abcast(self, command: str, kwargs: dict[str, Any] | None = None) -> None:
        """Send ``command`` to every node without waiting for replies."""
        self._broadcast(command, kwargs or {}, reply=False)

    def multi_call(self, command: str, kwargs: dict[str, Any] | None = None,
                   timeout: float | None = 1, limit: int | None = None,
                   callback: Callable[[Any], Any] | None = None, channel: Any = None) -> Any:
        """Send ``command`` to every node; return the replies received within ``timeout``."""
        return self._broadcast(command, kwargs or {}, reply=True, timeout=timeout,
                               limit=limit, callback=callback, channel=channel)

    def get_reply_queue(self) -> Queue:
        """The queue this mailbox (in this thread) receives replies on."""
        oid = self.oid
        assert self.reply_exchange is not None
        return Queue(f"{oid}.{self.reply_exchange.name}", exchange=self.reply_exchange,
                     routing_key=oid, durable=self.queue_durable,
                     exclusive=self.queue_exclusive, auto_delete=not self.queue_durable,
                     expires=self.reply_queue_expires, message_ttl=self.reply_queue_ttl)

    @cached_property
    def reply_queue(self) -> Queue:
        """:meth:`get_reply_queue`, made once."""
        return self.get_reply_queue()

    def get_queue(self, hostname: str) -> Queue:
        """The command queue of the node ``hostname``."""
        return Queue(f"{hostname}.{self.namespace}.pidbox", exchange=self.exchange,
                     durable=self.queue_durable, exclusive=self.queue_exclusive,
                     auto_delete=not self.queue_durable, expires=self.queue_expires,
                     message_ttl=self.queue_ttl)

    @contextmanager
    def producer_or_acquire(self, producer: Producer | None = None,
                            channel: Any = None) -> Iterator[Producer]:
        """``producer``, else one from :attr:`producer_pool`, else a new one on ``channel``."""
        if producer:
            yield producer
        elif self.producer_pool:
            with self.producer_pool.acquire() as acquired:
                yield acquired
        else:
            yield Producer(channel, auto_declare=False)

    def _channel(self, channel: Any) -> Any:
        if channel is not None:
            return channel
        if self.connection is None:
            raise RuntimeError("Mailbox is not bound to a connection: use mailbox(connection) "
                               "or pass channel=")
        return self.connection.default_channel

    def _publish_reply(self, reply: Any, exchange: str, routing_key: str, ticket: str | None,
                       channel: Any = None, producer: Producer | None = None,
                       **opts: Any) -> None:
        if channel is None and producer is None and not self.producer_pool:
            channel = self._channel(None)
        reply_exchange = Exchange(exchange, type="direct", delivery_mode="transient",
                                  durable=False)
        with self.producer_or_acquire(producer, channel) as prod:
            try:
                prod.publish(reply, exchange=reply_exchange, routing_key=routing_key,
                             declare=[reply_exchange],
                             headers={"ticket": ticket, "clock": self.clock.forward()},
                             retry=True, **opts)
            except InconsistencyError:
                pass  # the caller's reply queue is gone: nobody waits for this reply

    def _publish(self, type: str, arguments: dict[str, Any],
                 destination: Sequence[str] | None = None, reply_ticket: str | None = None,
                 channel: Any = None, timeout: float | None = None,
                 serializer: str | None = None, producer: Producer | None = None,
                 pattern: str | None = None, matcher: str | None = None) -> None:
        message: dict[str, Any] = {"method": type, "arguments": arguments,
                                   "destination": destination, "pattern": pattern,
                                   "matcher": matcher}
        chan = self._channel(channel)
        exchange = self.exchange
        assert exchange is not None and self.reply_exchange is not None
        if reply_ticket:
            reply_queue = self.reply_queue
            maybe_declare(reply_queue(chan))
            # The queue's own routing key, not self.oid: oid depends on the
            # thread, the cached queue does not.
            message.update(ticket=reply_ticket,
                           reply_to={"exchange": self.reply_exchange.name,
                                     "routing_key": reply_queue.routing_key})
        with self.producer_or_acquire(producer, chan) as prod:
            prod.publish(message, exchange=exchange.name, declare=[exchange],
                         headers={"clock": self.clock.forward(),
                                  "expires": time() + timeout if timeout else 0},
                         serializer=serializer or self.serializer, retry=True)

    def _broadcast(self, command: str, arguments: dict[str, Any] | None = None,
                   destination: Sequence[str] | None = None, reply: bool = False,
                   timeout: float | None = 1, limit: int | None = None,
                   callback: Callable[[Any], Any] | None = None, channel: Any = None,
                   serializer: str | None = None, pattern: str | None = None,
                   matcher: str | None = None) -> Any:
        if destination is not None and not isinstance(destination, (list, tuple)):
            raise ValueError(f"destination must be a list/tuple not {type(destination)}")
        if (pattern is not None and not isinstance(pattern, str)) or (
                matcher is not None and not isinstance(matcher, str)):
            raise ValueError(f"pattern and matcher must be strings not {type(pattern)}, "
                             f"{type(matcher)}")
        if not isinstance(command, str) or not command:
            raise ValueError(f"command must be a non-empty string, got {command!r}")
        reply_ticket = uuid() if reply else None
        chan = self._channel(channel)
        if limit is None and destination:
            limit = len(destination)  # at most one reply per named node
        self._publish(command, arguments or {}, destination=destination,
                      reply_ticket=reply_ticket, channel=chan, timeout=timeout,
                      serializer=serializer or self.serializer, pattern=pattern,
                      matcher=matcher)
        if reply_ticket:
            return self._collect(reply_ticket, limit=limit, timeout=timeout,
                                 callback=callback, channel=chan)
        return None

    # -- collecting replies ----------------------------------------------------
    def _collect(self, ticket: str, limit: int | None = None, timeout: float | None = 1,
                 callback: Callable[[Any], Any] | None = None, channel: Any = None,
                 accept: Any = None) -> list[Any]:
        """Replies carrying ``ticket``: until ``limit`` came or ``timeout`` seconds passed.

        Replies to other tickets met on the way are kept in
        :attr:`unclaimed` for their own collection.  ``timeout=None`` waits
        for ``limit`` replies without a deadline.
        """
        chan = self._channel(channel)
        queue = self.reply_queue
        responses: list[Any] = []
        unclaimed = self.unclaimed
        adjust_clock = self.clock.adjust

        def take(body: Any) -> None:
            if callback:
                callback(body)
            responses.append(body)

        for body in unclaimed.pop(ticket, ()):
            take(body)

        def on_message(body: Any, message: Any) -> None:
            headers = message.headers or {}
            adjust_clock(headers.get("clock") or 0)
            expires = headers.get("expires")
            if expires and time() > expires:
                return
            this_id = headers.get("ticket", ticket)
            if this_id == ticket:
                take(body)
            else:
                unclaimed[this_id].append(body)

        consumer = Consumer(chan, [queue], accept=self.accept if accept is None else accept,
                            no_ack=True, callbacks=[on_message])
        conn = self.connection if self.connection is not None else chan.connection.client
        deadline = None if timeout is None else monotonic() + timeout
        try:
            with consumer:
                while limit is None or len(responses) < limit:
                    if deadline is None:
                        wait = None
                    else:
                        wait = deadline - monotonic()
                        if wait <= 0:
                            break
                    try:
                        conn.drain_events(timeout=wait)
                    except socket.timeout:
                        break
            return responses
        finally:
            chan.after_reply_message_received(queue.name)

    # -- names -------------------------------------------------------------------
    def _get_exchange(self, namespace: str, type: str) -> Exchange:
        return Exchange(self.exchange_fmt % namespace, type=type, durable=False,
                        delivery_mode="transient")

    def _get_reply_exchange(self, namespace: str) -> Exchange:
        return Exchange(self.reply_exchange_fmt % namespace, type="direct", durable=False,
                        delivery_mode="transient")

    @property
    def oid(self) -> str:
        """Identifier of this mailbox in this process and thread."""
        return oid_from(self)

    @cached_property
    def producer_pool(self) -> Any:
        """The producer pool given to the constructor (evaluated if lazy), or ``None``."""
        return maybe_evaluate(self._producer_pool)
