"""The transport options of a Redis channel, and their defaults.

Each option is a class attribute of :class:`ChannelOptions`, which the
channel inherits; ``Connection(transport_options={...})`` overrides the
options named in :data:`OPTIONS` per channel.
"""

from __future__ import annotations

from typing import Any

import redis

from kombu_redis.keys import DEFAULT_PRIORITY_STEPS, SEP

__all__ = ("DEFAULT_HEALTH_CHECK_INTERVAL", "OPTIONS", "PRIORITY_STEPS", "ChannelOptions",
           "queue_arguments", "queue_expires")

DEFAULT_HEALTH_CHECK_INTERVAL = 25
PRIORITY_STEPS = list(DEFAULT_PRIORITY_STEPS)

#: The options a channel takes from ``transport_options`` (besides the
#: virtual channel's own).
OPTIONS = (
    "sep", "ack_emulation", "unacked_key", "unacked_index_key", "unacked_mutex_key",
    "unacked_mutex_expire", "visibility_timeout", "unacked_restore_limit",
    "unacked_restore_interval", "fanout_prefix", "fanout_patterns", "global_keyprefix",
    "socket_timeout", "socket_connect_timeout", "socket_keepalive",
    "socket_keepalive_options", "queue_order_strategy", "max_connections",
    "health_check_interval", "retry_on_timeout", "priority_steps", "client_name",
    "consume_batch_size", "credential_provider",
)


class ChannelOptions:
    """Defaults of the Redis channel's options (kombu's names and values)."""

    keyprefix_queue = "_kombu.binding.%s"
    keyprefix_binding_deadlines = "_kombu.binding_deadlines"
    keyprefix_binding_permanent = "_kombu.binding_permanent.%s"
    keyprefix_fanout = "/{db}."
    sep = SEP
    ack_emulation = True
    unacked_key = "unacked"
    unacked_index_key = "unacked_index"
    unacked_mutex_key = "unacked_mutex"
    unacked_mutex_expire = 300
    #: Messages restored per batch (None: 100); every expired one is restored.
    unacked_restore_limit: int | None = None
    unacked_restore_interval = 10.0
    visibility_timeout: float = 3600
    priority_steps = PRIORITY_STEPS
    socket_timeout: float | None = None
    socket_connect_timeout: float | None = None
    socket_keepalive: bool | None = None
    socket_keepalive_options: dict[int, Any] | None = None
    retry_on_timeout: bool | None = None
    max_connections = 10
    health_check_interval = DEFAULT_HEALTH_CHECK_INTERVAL
    client_name: str | None = None
    #: A redis.CredentialProvider (or the dotted name of its class), used
    #: instead of the user name and password of the URL.
    credential_provider: Any = None
    fanout_prefix: bool | str = True
    fanout_patterns = True
    global_keyprefix = ""
    queue_order_strategy = "round_robin"
    consume_batch_size = 100
    connection_class: Any = redis.Connection
    connection_class_ssl: Any = redis.SSLConnection


def queue_arguments(arguments: dict[str, Any] | None,
                    expires: float | None = None) -> dict[str, Any]:
    """The queue arguments stored for a declare: ``Queue(expires=s)`` becomes
    ``x-expires`` in milliseconds, as with AMQP."""
    args = dict(arguments or {})
    if expires is not None:
        args["x-expires"] = int(expires * 1000)
    return args


def queue_expires(arguments: Any) -> int | None:
    """A queue's ``x-expires`` (ms) from its declare arguments; None if it has
    none or it is not a number."""
    try:
        return int(arguments["x-expires"])
    except (KeyError, TypeError, ValueError):
        return None
