from typing import Any, NamedTuple

from kombu.common import eventloop as eventloop
from kombu.common import uuid as uuid
from kombu.connection import BrokerConnection as BrokerConnection
from kombu.connection import Connection as Connection
from kombu.entity import Exchange as Exchange
from kombu.entity import Queue as Queue
from kombu.entity import binding as binding
from kombu.hookspecs import hookimpl as hookimpl
from kombu.message import Message as Message
from kombu.messaging import Consumer as Consumer
from kombu.messaging import Producer as Producer
from kombu.observability import register_plugin as register_plugin
from kombu.observability import unregister_plugin as unregister_plugin
from kombu.pools import connections as connections
from kombu.pools import producers as producers
from kombu.serialization import disable_insecure_serializers as disable_insecure_serializers
from kombu.serialization import enable_insecure_serializers as enable_insecure_serializers
from kombu.transport import register_transport as register_transport
from kombu.utils.url import parse_url as parse_url

class version_info_t(NamedTuple):
    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: str

VERSION: version_info_t
version_info: version_info_t
__version__: str
TRANSPORT_API: tuple[int, int]
__all__: tuple[str, ...]

def __getattr__(name: str) -> Any: ...
