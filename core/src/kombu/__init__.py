"""kombu-core: kombu's messaging API, with transports installed as plugins.

Everything here is imported on first use, so ``import kombu`` stays cheap: it
loads no transport plugin, no broker client, not :mod:`importlib.metadata`
and not :mod:`pluggy`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple


class version_info_t(NamedTuple):
    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: str


VERSION = version_info = version_info_t(1, 0, 0, "", "")
__version__ = "1.0.0"

#: Version of the transport interface plugins are written against: a plugin
#: registers with ``api=(major, minor)``; the major must equal this one's and
#: the minor must not be greater.
TRANSPORT_API: tuple[int, int] = (1, 0)

_EXPORTS = {
    "Connection": "kombu.connection",
    "BrokerConnection": "kombu.connection",
    "Exchange": "kombu.entity",
    "Queue": "kombu.entity",
    "binding": "kombu.entity",
    "Message": "kombu.message",
    "Consumer": "kombu.messaging",
    "Producer": "kombu.messaging",
    "connections": "kombu.pools",
    "producers": "kombu.pools",
    "parse_url": "kombu.utils.url",
    "eventloop": "kombu.common",
    "uuid": "kombu.common",
    "enable_insecure_serializers": "kombu.serialization",
    "disable_insecure_serializers": "kombu.serialization",
    "hookimpl": "kombu.hookspecs",
    "register_transport": "kombu.transport",
}
_SUBMODULES = frozenset({
    "abstract", "common", "compression", "connection", "entity", "exceptions",
    "hookspecs", "log", "message", "messaging", "pools", "resource",
    "serialization", "simple", "testing", "transport", "utils",
})

__all__ = (
    "TRANSPORT_API",
    "VERSION",
    "BrokerConnection",
    "Connection",
    "Consumer",
    "Exchange",
    "Message",
    "Producer",
    "Queue",
    "__version__",
    "binding",
    "connections",
    "disable_insecure_serializers",
    "enable_insecure_serializers",
    "eventloop",
    "hookimpl",
    "parse_url",
    "producers",
    "register_transport",
    "uuid",
    "version_info_t",
)

if TYPE_CHECKING:  # pragma: no cover
    from kombu.common import eventloop, uuid
    from kombu.connection import BrokerConnection, Connection
    from kombu.entity import Exchange, Queue, binding
    from kombu.hookspecs import hookimpl
    from kombu.message import Message
    from kombu.messaging import Consumer, Producer
    from kombu.pools import connections, producers
    from kombu.serialization import disable_insecure_serializers, enable_insecure_serializers
    from kombu.transport import register_transport
    from kombu.utils.url import parse_url


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"kombu.{name}")
    else:
        raise AttributeError(f"module 'kombu' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})
