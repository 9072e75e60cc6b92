"""Exchange, Queue and binding declarations."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any, Callable, ClassVar

from kombu.abstract import AttrSpec, MaybeChannelBound, Object
from kombu.exceptions import ContentDisallowed
from kombu.serialization import prepare_accept_content

__all__ = (
    "DELIVERY_MODES",
    "PERSISTENT_DELIVERY_MODE",
    "TRANSIENT_DELIVERY_MODE",
    "Exchange",
    "Queue",
    "binding",
    "maybe_delivery_mode",
)

TRANSIENT_DELIVERY_MODE = 1
PERSISTENT_DELIVERY_MODE = 2
DELIVERY_MODES = {"transient": TRANSIENT_DELIVERY_MODE, "persistent": PERSISTENT_DELIVERY_MODE}

#: Exchanges whose name starts with one of these belong to the broker and
#: are never declared.
INTERNAL_EXCHANGE_PREFIX = ("amq.",)


def _reprstr(s: Any) -> str:
    """``repr(s)`` without the quotes."""
    return repr(s)[1:-1]


def pretty_bindings(bindings: Iterable[Any]) -> str:
    return f"[{', '.join(map(str, bindings))}]"


def maybe_delivery_mode(v: Any, modes: Mapping[str, int] | None = None,
                        default: int = PERSISTENT_DELIVERY_MODE) -> int:
    """Return the delivery mode ``v`` (a number or a name), or ``default`` if empty."""
    if v:
        if v.__class__ is int:
            return v
        if isinstance(v, numbers.Integral):
            return int(v)
        modes = modes or DELIVERY_MODES
        try:
            return modes[v]
        except KeyError:
            raise KeyError(
                f"Unknown delivery mode {v!r}: use 1, 2, or one of {sorted(modes)}") from None
    return default


def _delivery_mode_attr(v: Any) -> Any:
    return DELIVERY_MODES.get(v) or v


def _exchange_name(exchange: Any) -> str:
    return exchange.name if isinstance(exchange, Exchange) else exchange


class Exchange(MaybeChannelBound):
    """An exchange declaration.

    :param name: the exchange name; ``''`` is the default exchange.
    :param type: ``direct`` (default), ``topic``, ``fanout`` or ``headers``
        (or any type the broker supports).
    :param channel: a channel or :class:`~kombu.Connection` to bind to.
    :keyword durable: survives a broker restart (default ``True``).
    :keyword auto_delete: deleted when its last queue is unbound (default ``False``).
    :keyword passive: only check that the exchange exists when declaring.
    :keyword delivery_mode: default delivery mode of messages published
        through it: ``1``/``'transient'`` or ``2``/``'persistent'``
        (``None``: persistent).
    :keyword arguments: extra declaration arguments.
    :keyword no_declare: never declare this exchange.
    """

    TRANSIENT_DELIVERY_MODE = TRANSIENT_DELIVERY_MODE
    PERSISTENT_DELIVERY_MODE = PERSISTENT_DELIVERY_MODE

    name = ""
    type = "direct"
    durable = True
    auto_delete = False
    passive = False
    delivery_mode: Any = None
    no_declare = False
    arguments: dict[str, Any] | None

    attrs: ClassVar[AttrSpec] = (
        ("name", None),
        ("type", None),
        ("arguments", None),
        ("durable", bool),
        ("passive", bool),
        ("auto_delete", bool),
        ("delivery_mode", _delivery_mode_attr),
        ("no_declare", bool),
    )

    def __init__(self, name: str = "", type: str = "", channel: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name or self.name
        self.type = type or self.type
        self.maybe_bind(channel)

    def __hash__(self) -> int:
        return hash(self.name)

    def _can_declare(self) -> bool:
        return not self.no_declare and bool(self.name) and not self.name.startswith(
            INTERNAL_EXCHANGE_PREFIX)

    def declare(self, nowait: bool = False, passive: bool | None = None,
                channel: Any = None) -> Any:
        """Declare the exchange on the broker (or check it exists, if passive).

        Does nothing for the default exchange, ``amq.*`` exchanges and when
        :attr:`no_declare` is set.
        """
        if self._can_declare():
            return (channel or self.channel).exchange_declare(
                exchange=self.name, type=self.type, durable=self.durable,
                auto_delete=self.auto_delete, arguments=self.arguments, nowait=nowait,
                passive=self.passive if passive is None else passive,
            )
        return None

    def bind_to(self, exchange: Exchange | str = "", routing_key: str = "",
                arguments: dict[str, Any] | None = None, nowait: bool = False,
                channel: Any = None, **kwargs: Any) -> Any:
        """Bind this exchange to the ``exchange`` it receives messages from."""
        return (channel or self.channel).exchange_bind(
            destination=self.name, source=_exchange_name(exchange), routing_key=routing_key,
            nowait=nowait, arguments=arguments,
        )

    def unbind_from(self, source: Exchange | str = "", routing_key: str = "",
                    nowait: bool = False, arguments: dict[str, Any] | None = None,
                    channel: Any = None) -> Any:
        """Remove a binding made with :meth:`bind_to`."""
        return (channel or self.channel).exchange_unbind(
            destination=self.name, source=_exchange_name(source), routing_key=routing_key,
            nowait=nowait, arguments=arguments,
        )

    def Message(self, body: Any, delivery_mode: Any = None,
                properties: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Build a transport message for :meth:`publish`.

        ``kwargs`` are those of the channel's ``prepare_message``
        (``priority``, ``content_type``, ``content_encoding``, ``headers``).
        Text bodies default to the ``utf-8`` content encoding.  (kombu 5.x
        ignores the ``delivery_mode`` argument and overrides a given
        ``content_encoding`` of text bodies; both are honoured here.)
        """
        properties = {} if properties is None else properties
        properties["delivery_mode"] = maybe_delivery_mode(delivery_mode or self.delivery_mode)
        if isinstance(body, str):
            kwargs.setdefault("content_encoding", "utf-8")
        return self.channel.prepare_message(body, properties=properties, **kwargs)

    def publish(self, message: Any, routing_key: str | None = None, mandatory: bool = False,
                immediate: bool = False, exchange: str | None = None) -> Any:
        """Publish ``message`` (from :meth:`Message`, or text) to this exchange."""
        if isinstance(message, str):
            message = self.Message(message)
        return self.channel.basic_publish(
            message, exchange=exchange or self.name, routing_key=routing_key,
            mandatory=mandatory, immediate=immediate,
        )

    def delete(self, if_unused: bool = False, nowait: bool = False) -> Any:
        """Delete the exchange on the broker."""
        return self.channel.exchange_delete(exchange=self.name, if_unused=if_unused,
                                            nowait=nowait)

    def binding(self, routing_key: str = "", arguments: dict[str, Any] | None = None,
                unbind_arguments: dict[str, Any] | None = None) -> binding:
        """A :class:`binding` to this exchange."""
        return binding(self, routing_key, arguments, unbind_arguments)

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, Exchange):
            return (self.name == other.name and self.type == other.type
                    and self.arguments == other.arguments and self.durable == other.durable
                    and self.auto_delete == other.auto_delete
                    and self.delivery_mode == other.delivery_mode)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __repr__(self) -> str:
        return self._repr_entity(self)

    def __str__(self) -> str:
        return f"Exchange {_reprstr(self.name) or repr('')}({self.type})"

    @property
    def can_cache_declaration(self) -> bool:  # type: ignore[override]
        return not self.auto_delete


class binding(Object):
    """A binding of a queue or exchange to the exchange ``exchange``.

    :param exchange: the exchange to bind to.
    :param routing_key: the binding key.
    :param arguments: arguments of the bind operation.
    :param unbind_arguments: arguments of the unbind operation.

    Unlike kombu's, bindings compare equal when these four are equal (so
    that queues with different bindings are not mistaken for one another).
    """

    attrs: ClassVar[AttrSpec] = (
        ("exchange", None),
        ("routing_key", None),
        ("arguments", None),
        ("unbind_arguments", None),
    )

    def __init__(self, exchange: Exchange | None = None, routing_key: str = "",
                 arguments: dict[str, Any] | None = None,
                 unbind_arguments: dict[str, Any] | None = None) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.arguments = arguments
        self.unbind_arguments = unbind_arguments

    def declare(self, channel: Any, nowait: bool = False) -> None:
        """Declare the exchange of the binding."""
        if self.exchange and self.exchange.name:
            self.exchange.declare(channel=channel, nowait=nowait)

    def bind(self, entity: Queue | Exchange, nowait: bool = False, channel: Any = None) -> None:
        """Bind ``entity`` (a queue or exchange) with this binding."""
        entity.bind_to(exchange=self.exchange, routing_key=self.routing_key,  # type: ignore[arg-type]
                       arguments=self.arguments, nowait=nowait, channel=channel)

    def unbind(self, entity: Queue | Exchange, nowait: bool = False, channel: Any = None) -> None:
        """Remove this binding of ``entity``."""
        entity.unbind_from(self.exchange, routing_key=self.routing_key,  # type: ignore[arg-type]
                           arguments=self.unbind_arguments, nowait=nowait, channel=channel)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, binding):
            return (self.exchange == other.exchange and self.routing_key == other.routing_key
                    and self.arguments == other.arguments
                    and self.unbind_arguments == other.unbind_arguments)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("B", self.exchange.name if self.exchange is not None else "",
                     self.routing_key))

    def __repr__(self) -> str:
        return f"<binding: {self}>"

    def __str__(self) -> str:
        name = self.exchange.name if self.exchange is not None else ""
        return f"{_reprstr(name)}->{_reprstr(self.routing_key)}"


class Queue(MaybeChannelBound):
    """A queue declaration.

    :param name: the queue name; ``''`` lets the broker choose one when
        declared (:attr:`name` is then set).
    :param exchange: the :class:`Exchange` (or exchange name) to bind to,
        or a list of :class:`binding` objects.
    :param routing_key: the binding key.
    :param channel: a channel or :class:`~kombu.Connection` to bind to.
    :param bindings: :class:`binding` objects (instead of one exchange).
    :param on_declared: called with ``(name, message_count, consumer_count)``
        after each declaration.
    :keyword durable: survives a broker restart (default ``True``).
    :keyword exclusive: only this connection may use it; implies auto_delete.
    :keyword auto_delete: deleted when its last consumer is cancelled.
    :keyword queue_arguments: extra declaration arguments.
    :keyword binding_arguments: extra bind arguments.
    :keyword consumer_arguments: extra consume arguments.
    :keyword expires: seconds unused before the broker deletes the queue.
    :keyword message_ttl: seconds a message may wait in the queue.
    :keyword max_length: most messages the queue holds.
    :keyword max_length_bytes: most bytes of message bodies the queue holds.
    :keyword max_priority: highest message priority the queue honours.
    :keyword no_ack: default of :meth:`get` and :meth:`consume`.
    :keyword alias: a name for applications' own use.
    :keyword no_declare: never declare the queue or its exchange.
    """

    ContentDisallowed = ContentDisallowed

    name = ""
    exchange: Any = Exchange("")
    routing_key = ""

    durable = True
    exclusive = False
    auto_delete = False
    no_ack = False
    no_declare = False

    queue_arguments: dict[str, Any] | None
    binding_arguments: dict[str, Any] | None
    consumer_arguments: dict[str, Any] | None
    alias: str | None
    expires: float | None
    message_ttl: float | None
    max_length: int | None
    max_length_bytes: int | None
    max_priority: int | None

    attrs: ClassVar[AttrSpec] = (
        ("name", None),
        ("exchange", None),
        ("routing_key", None),
        ("queue_arguments", None),
        ("binding_arguments", None),
        ("consumer_arguments", None),
        ("durable", bool),
        ("exclusive", bool),
        ("auto_delete", bool),
        ("no_ack", None),
        ("alias", None),
        ("bindings", list),
        ("no_declare", bool),
        ("expires", float),
        ("message_ttl", float),
        ("max_length", int),
        ("max_length_bytes", int),
        ("max_priority", int),
    )

    def __init__(self, name: str = "", exchange: Exchange | str | Iterable[binding] | None = None,
                 routing_key: str = "", channel: Any = None,
                 bindings: Iterable[binding] | None = None,
                 on_declared: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name or self.name
        if isinstance(exchange, str):
            self.exchange = Exchange(exchange)
        elif isinstance(exchange, Exchange):
            self.exchange = exchange
        self.routing_key = routing_key or self.routing_key
        self.bindings: set[binding] = set(bindings or ())
        self.on_declared = on_declared
        if isinstance(exchange, (list, tuple, set, frozenset)):
            self.bindings |= set(exchange)
        if self.bindings:
            self.exchange = None
        if self.exclusive:
            self.auto_delete = True
        self.maybe_bind(channel)

    def bind(self, channel: Any) -> Queue:
        """Return a copy bound to ``channel`` (keeping :attr:`on_declared`)."""
        bound = super().bind(channel)
        bound.on_declared = self.on_declared
        return bound

    def __hash__(self) -> int:
        return hash(self.name)

    def when_bound(self) -> None:
        if self.exchange:
            self.exchange = self.exchange(self.channel)

    def declare(self, nowait: bool = False, channel: Any = None) -> str:
        """Declare the exchange, the queue and its bindings; return the queue name."""
        if not self.no_declare:
            exchange = self.exchange
            if exchange:
                exchange.declare(nowait=nowait, channel=channel)
            self.queue_declare(nowait=nowait, passive=False, channel=channel)
            if exchange and exchange.name:
                self.queue_bind(nowait=nowait, channel=channel)
            for b in self.bindings:
                chan = channel or self.channel
                b.declare(chan)
                b.bind(self, nowait=nowait, channel=chan)
        return self.name

    def queue_declare(self, nowait: bool = False, passive: bool = False,
                      channel: Any = None) -> Any:
        """Declare the queue only; return ``(name, message_count, consumer_count)``."""
        channel = channel or self.channel
        arguments = channel.prepare_queue_arguments(
            self.queue_arguments or {},
            expires=self.expires,
            message_ttl=self.message_ttl,
            max_length=self.max_length,
            max_length_bytes=self.max_length_bytes,
            max_priority=self.max_priority,
        )
        ret = channel.queue_declare(
            queue=self.name, passive=passive, durable=self.durable, exclusive=self.exclusive,
            auto_delete=self.auto_delete, arguments=arguments, nowait=nowait,
        )
        if not self.name and ret is not None:
            self.name = ret[0]
        if self.on_declared and ret is not None:
            self.on_declared(*ret)
        return ret

    def queue_bind(self, nowait: bool = False, channel: Any = None) -> Any:
        """Bind the queue to :attr:`exchange` with :attr:`routing_key`."""
        return self.bind_to(self.exchange, self.routing_key, self.binding_arguments,
                            channel=channel, nowait=nowait)

    def bind_to(self, exchange: Exchange | str = "", routing_key: str = "",
                arguments: dict[str, Any] | None = None, nowait: bool = False,
                channel: Any = None) -> Any:
        """Bind the queue to ``exchange``."""
        return (channel or self.channel).queue_bind(
            queue=self.name, exchange=_exchange_name(exchange), routing_key=routing_key,
            arguments=arguments, nowait=nowait,
        )

    def queue_unbind(self, arguments: dict[str, Any] | None = None, nowait: bool = False,
                     channel: Any = None) -> Any:
        """Remove the binding to :attr:`exchange`."""
        return self.unbind_from(self.exchange, self.routing_key, arguments, nowait, channel)

    def unbind_from(self, exchange: Exchange | str = "", routing_key: str = "",
                    arguments: dict[str, Any] | None = None, nowait: bool = False,
                    channel: Any = None) -> Any:
        """Remove the binding of the queue to ``exchange`` (an Exchange or a name)."""
        return (channel or self.channel).queue_unbind(
            queue=self.name, exchange=_exchange_name(exchange), routing_key=routing_key,
            arguments=arguments, nowait=nowait,
        )

    def get(self, no_ack: bool | None = None, accept: Iterable[str] | None = None) -> Any:
        """Fetch one message, or return ``None`` if the queue is empty.

        :param no_ack: do not expect an acknowledgement (default :attr:`no_ack`).
        :param accept: content types (or serializer names) the message may
            be decoded from.
        """
        no_ack = self.no_ack if no_ack is None else no_ack
        channel = self.channel
        message = channel.basic_get(queue=self.name, no_ack=no_ack)
        if message is not None:
            m2p = getattr(channel, "message_to_python", None)
            if m2p is not None:
                message = m2p(message)
            if no_ack:
                message._no_ack = True
            if message.errors:
                message._reraise_error()
            message.accept = prepare_accept_content(accept)
        return message

    def purge(self, nowait: bool = False) -> int:
        """Remove every ready message; return how many there were."""
        return self.channel.queue_purge(queue=self.name, nowait=nowait) or 0

    def consume(self, consumer_tag: str = "", callback: Callable[[Any], Any] | None = None,
                no_ack: bool | None = None, nowait: bool = False,
                on_cancel: Callable[[str], Any] | None = None) -> Any:
        """Start consuming: ``callback(message)`` is called for each delivery.

        ``on_cancel(consumer_tag)`` is passed to the channel only when given
        (for brokers that notify cancellations).
        """
        if no_ack is None:
            no_ack = self.no_ack
        kwargs = {} if on_cancel is None else {"on_cancel": on_cancel}
        return self.channel.basic_consume(
            queue=self.name, no_ack=no_ack, consumer_tag=consumer_tag or "",
            callback=callback, nowait=nowait, arguments=self.consumer_arguments, **kwargs,
        )

    def cancel(self, consumer_tag: str) -> Any:
        """Cancel the consumer ``consumer_tag``."""
        return self.channel.basic_cancel(consumer_tag)

    def delete(self, if_unused: bool = False, if_empty: bool = False,
               nowait: bool = False) -> Any:
        """Delete the queue (only if unused/empty when those flags are set)."""
        return self.channel.queue_delete(queue=self.name, if_unused=if_unused,
                                         if_empty=if_empty, nowait=nowait)

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, Queue):
            return (self.name == other.name and self.exchange == other.exchange
                    and self.routing_key == other.routing_key
                    and self.queue_arguments == other.queue_arguments
                    and self.binding_arguments == other.binding_arguments
                    and self.consumer_arguments == other.consumer_arguments
                    and self.durable == other.durable and self.exclusive == other.exclusive
                    and self.auto_delete == other.auto_delete
                    and self.bindings == other.bindings)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __repr__(self) -> str:
        if self.bindings:
            return self._repr_entity(
                f"Queue {_reprstr(self.name)} -> {pretty_bindings(self.bindings)}")
        return self._repr_entity(
            f"Queue {_reprstr(self.name)} -> {self.exchange!r} -> {_reprstr(self.routing_key)}")

    @property
    def can_cache_declaration(self) -> bool:  # type: ignore[override]
        """False for queues the broker may delete (auto_delete or expiring).

        (kombu 5.x only looks for ``x-expires`` in :attr:`queue_arguments`;
        :attr:`expires` counts too here.)
        """
        expiring = self.expires is not None or bool(
            self.queue_arguments and "x-expires" in self.queue_arguments)
        return not expiring and not self.auto_delete

    @classmethod
    def from_dict(cls, queue: str, **options: Any) -> Queue:
        """Build a queue (and its exchange) from a flat dict of options.

        Recognised keys: ``exchange``, ``exchange_type``, ``routing_key`` or
        ``binding_key``, ``delivery_mode``, ``durable``, ``auto_delete``
        (``exchange_durable``, ``queue_durable``, ``exchange_auto_delete``,
        ``queue_auto_delete`` override them for one side), ``exclusive``,
        ``no_ack``, ``exchange_arguments``, ``queue_arguments``,
        ``binding_arguments``, ``consumer_arguments`` and ``bindings``.
        """
        def either(specific: str, general: str) -> Any:
            value = options.get(specific)
            return options.get(general) if value is None else value

        binding_key = options.get("binding_key") or options.get("routing_key")
        exchange = Exchange(
            options.get("exchange"),  # type: ignore[arg-type]
            type=options.get("exchange_type"),  # type: ignore[arg-type]
            delivery_mode=options.get("delivery_mode"),
            durable=either("exchange_durable", "durable"),
            auto_delete=either("exchange_auto_delete", "auto_delete"),
            arguments=options.get("exchange_arguments"),
        )
        return cls(
            queue,
            exchange=exchange,
            routing_key=binding_key,  # type: ignore[arg-type]
            durable=either("queue_durable", "durable"),
            exclusive=options.get("exclusive"),
            auto_delete=either("queue_auto_delete", "auto_delete"),
            no_ack=options.get("no_ack"),
            queue_arguments=options.get("queue_arguments"),
            binding_arguments=options.get("binding_arguments"),
            consumer_arguments=options.get("consumer_arguments"),
            bindings=options.get("bindings"),
        )

    def as_dict(self, recurse: bool = False) -> dict[str, Any]:
        result = super().as_dict(recurse)
        if recurse and result.get("bindings"):
            result["bindings"] = [b.as_dict(recurse=True) for b in result["bindings"]]
        return result
