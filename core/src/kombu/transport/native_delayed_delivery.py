"""RabbitMQ delayed delivery without a plugin: a binary cascade of TTL queues.

A delay of ``d`` seconds is written into the routing key as 28 bits
(``'0.0.…1.0.1.<routing key>'``, most significant first) and the message
is published to the topic exchange ``celery_delayed_27``.  Level ``n``
(exchange and queue ``celery_delayed_<n>``) holds messages whose bit ``n``
is set for ``2**n`` seconds (``x-message-ttl``) and then dead-letters them
to level ``n - 1``; messages whose bit is clear pass straight on through an
exchange-to-exchange binding.  Level 0 hands everything to the topic
exchange ``celery_delayed_delivery``, which routes on the original routing
key (``#.<key>`` bindings) to the destination exchanges.  Names, queue
arguments and bindings are kombu 5.x's, so both can share a broker.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from kombu.entity import Exchange, Queue, binding
from kombu.log import get_logger

if TYPE_CHECKING:
    from kombu.connection import Connection

__all__ = (
    "CELERY_DELAYED_DELIVERY_EXCHANGE",
    "MAX_LEVEL",
    "MAX_NUMBER_OF_BITS_TO_USE",
    "bind_queue_to_native_delayed_delivery_exchange",
    "calculate_routing_key",
    "declare_native_delayed_delivery_exchanges_and_queues",
    "level_name",
)

logger = get_logger(__name__)

#: Bits of the delay written into the routing key (delays up to 2**28 - 1 s).
MAX_NUMBER_OF_BITS_TO_USE = 28
#: The highest level (the exchange delayed messages are published to).
MAX_LEVEL = MAX_NUMBER_OF_BITS_TO_USE - 1
#: The exchange that hands delayed messages on to their destinations.
CELERY_DELAYED_DELIVERY_EXCHANGE = "celery_delayed_delivery"

QUEUE_TYPES = ("classic", "quorum")

#: A delay prefix (28 ``0.``/``1.`` words) at the start of a routing key.
_delay_prefix_re = re.compile(rf"^(?:[01]\.){{{MAX_NUMBER_OF_BITS_TO_USE}}}")


def level_name(level: int, prefix: str | None = None) -> str:
    """The exchange and queue name of ``level``: ``[<prefix>_]celery_delayed_<level>``."""
    if level < 0:
        raise ValueError("level must be a non-negative number")
    return f"{prefix}_celery_delayed_{level}" if prefix else f"celery_delayed_{level}"


def _celery_delayed_delivery_exchange(prefix: str | None = None) -> str:
    if prefix:
        return f"{prefix}_{CELERY_DELAYED_DELIVERY_EXCHANGE}"
    return CELERY_DELAYED_DELIVERY_EXCHANGE


def _bit_pattern(level: int, bit: str) -> str:
    """Binding key matching routing keys whose bit ``level`` is ``bit`` ('0' or '1')."""
    return "*." * (MAX_LEVEL - level) + f"{bit}.#"


def declare_native_delayed_delivery_exchanges_and_queues(
        connection: Connection, queue_type: str, prefix: str | None = None) -> None:
    """Declare the delay levels, their bindings and the delivery exchange.

    ``queue_type`` is ``'classic'`` or ``'quorum'`` (``x-queue-type`` of the
    delay queues; quorum queues dead-letter ``at-least-once``).  With a
    non-empty ``prefix`` every name starts with ``<prefix>_``.  Declaring
    again with the same settings changes nothing.
    """
    if queue_type not in QUEUE_TYPES:
        raise ValueError("queue_type must be either classic or quorum")
    channel = connection.channel()
    try:
        for level in range(MAX_LEVEL, -1, -1):
            name = level_name(level, prefix)
            dead_letter = (level_name(level - 1, prefix) if level > 0
                           else _celery_delayed_delivery_exchange(prefix))
            Exchange(name, type="topic").bind(channel).declare()
            arguments: dict[str, Any] = {
                "x-queue-type": queue_type,
                "x-overflow": "reject-publish",
                "x-message-ttl": (2 ** level) * 1000,
                "x-dead-letter-exchange": dead_letter,
            }
            if queue_type == "quorum":
                arguments["x-dead-letter-strategy"] = "at-least-once"
            queue = Queue(name, queue_arguments=arguments).bind(channel)
            queue.declare()
            queue.bind_to(name, _bit_pattern(level, "1"))
        for level in range(MAX_LEVEL, 0, -1):
            # bit clear: skip this level's wait
            Exchange(level_name(level - 1, prefix), type="topic").bind(channel).bind_to(
                level_name(level, prefix), _bit_pattern(level, "0"))
        delivery = Exchange(_celery_delayed_delivery_exchange(prefix), type="topic").bind(channel)
        delivery.declare()
        delivery.bind_to(level_name(0, prefix), _bit_pattern(0, "0"))
    finally:
        channel.close()


def bind_queue_to_native_delayed_delivery_exchange(
        connection: Connection, queue: Queue, prefix: str | None = None) -> None:
    """Route delayed messages for ``queue`` from the delivery exchange to it.

    Each exchange ``queue`` is bound to (its ``exchange``, else its
    ``bindings``) is bound to the delivery exchange with ``#.<routing key>``
    and ``queue`` to that exchange with the same key.  Direct exchanges
    cannot match the delay prefix: they are skipped with a warning.
    """
    channel = connection.channel()
    try:
        bound = queue.bind(channel)
        bindings: set[binding]
        if bound.exchange is not None and bound.exchange.name:
            bindings = {binding(bound.exchange, routing_key=bound.routing_key,
                                arguments=bound.binding_arguments)}
        else:
            bindings = set(bound.bindings or ())
        for entry in bindings:
            if entry.exchange is None:
                continue
            exchange = entry.exchange.bind(channel)
            if exchange.type == "direct":
                logger.warning(
                    "Exchange %s is a direct exchange and native delayed delivery do not "
                    "support direct exchanges.\nETA tasks published to this exchange will "
                    "block the worker until the ETA arrives.", exchange.name)
                continue
            key = entry.routing_key or ""
            routing_key = key if key.startswith("#") else f"#.{key}"
            exchange.bind_to(_celery_delayed_delivery_exchange(prefix), routing_key=routing_key)
            bound.bind_to(exchange.name, routing_key=routing_key)
    finally:
        channel.close()


def calculate_routing_key(countdown: int, routing_key: str) -> str:
    """The routing key that delays a message by ``countdown`` seconds.

    A delay prefix already on ``routing_key`` (a retried message) is
    replaced, not stacked.
    """
    if countdown < 1:
        raise ValueError("countdown must be a positive number")
    if countdown >= 2 ** MAX_NUMBER_OF_BITS_TO_USE:
        raise ValueError(
            f"countdown must be less than 2**{MAX_NUMBER_OF_BITS_TO_USE} seconds "
            f"(about 8.5 years), got {countdown}")
    if not routing_key:
        raise ValueError("routing_key must be non-empty")
    routing_key = _delay_prefix_re.sub("", routing_key, count=1)
    return ".".join(f"{countdown:0{MAX_NUMBER_OF_BITS_TO_USE}b}") + f".{routing_key}"
