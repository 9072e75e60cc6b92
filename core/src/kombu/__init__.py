"""kombu-core: kombu's messaging API, with transports installed as plugins.

Everything here is imported on first use, so ``import kombu`` stays cheap: it
loads no transport plugin, no broker client, not :mod:`importlib.metadata`
and not :mod:`pluggy`.
"""

from __future__ import annotations

import importlib
import os
from collections import namedtuple

# Type checkers read __init__.pyi; importing typing here would cost ~10 ms.

version_info_t = namedtuple("version_info_t", ("major", "minor", "micro", "releaselevel", "serial"))

VERSION = version_info = version_info_t(1, 0, 0, "", "")
__version__ = "1.0.0"

# Files that kombu 5.x ships and kombu-core never does.  Both provide the
# "kombu" folder, so installing kombu-core over kombu 5.x (or kombu 5.x and then
# kombu-core) leaves a mix of the two; stop here with the fix instead of failing
# somewhere deep.  A stat or two: no metadata is read.
_KOMBU5_MARKERS = ("librabbitmq.py", "SLMQ.py", "qpid.py")


def _refuse_mixed_install() -> None:
    transport = os.path.join(os.path.dirname(__file__), "transport")
    for marker in _KOMBU5_MARKERS:
        found = os.path.join(transport, marker)
        if os.path.exists(found):
            raise ImportError(
                f"kombu 5.x is installed in the same folder as kombu-core ({found} belongs to "
                f"kombu 5.x, not to kombu-core): the two share the 'kombu' package and overwrite "
                f"each other's files.  Remove kombu 5.x and restore kombu-core: "
                f"'pip uninstall -y kombu' then 'pip install --force-reinstall --no-deps "
                f"kombu-core'.  To install Celery beside kombu-core, use the placeholder 'kombu' "
                f"distribution or uv's exclude-dependencies (see the Celery section of the "
                f"kombu-core README).")


_refuse_mixed_install()

#: Version of the transport interface plugins are written against: a plugin
#: registers with ``api=(major, minor)``; the major must equal this one's and
#: the minor must not be greater.
TRANSPORT_API = (1, 0)

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
    "register_plugin": "kombu.observability",
    "unregister_plugin": "kombu.observability",
}
_SUBMODULES = frozenset({
    "abstract", "common", "compression", "connection", "entity", "exceptions",
    "hookspecs", "log", "message", "messaging", "observability", "pools", "resource",
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
    "register_plugin",
    "register_transport",
    "unregister_plugin",
    "uuid",
    "version_info_t",
)

def __getattr__(name: str):  # type: ignore[no-untyped-def]
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
