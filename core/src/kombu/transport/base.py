"""The transport interface every transport implements.

A transport turns a :class:`~kombu.Connection` into a broker connection
(:meth:`Transport.establish_connection`), makes channels on it and waits for
events (:meth:`Transport.drain_events`).  Channels implement the AMQP-like
methods that :mod:`kombu.entity` and :mod:`kombu.messaging` call
(:class:`StdChannel`).  Transports built on kombu's virtual layer only
implement a handful of queue primitives: see :mod:`kombu.transport.virtual`.
"""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from kombu.exceptions import ChannelError, ConnectionError
from kombu.utils.objects import cached_property

if TYPE_CHECKING:  # pragma: no cover
    from kombu.connection import Connection
    from kombu.messaging import Consumer, Producer

__all__ = (
    "Implements",
    "Management",
    "Message",  # noqa: F822  (module __getattr__, imported lazily)
    "StdChannel",
    "Transport",
    "default_transport_capabilities",
    "queue_declare_ok_t",
)

def __getattr__(name: str) -> Any:
    if name == "Message":  # kombu.transport.base.Message, as in kombu (imported lazily)
        from kombu.message import Message

        return Message
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class queue_declare_ok_t(NamedTuple):
    """What ``Channel.queue_declare`` returns (the AMQP ``queue.declare-ok`` reply)."""

    queue: str
    message_count: int
    consumer_count: int


class Implements(dict):
    """What a transport supports, readable as attributes."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def extend(self, **kwargs: Any) -> Implements:
        """Return a copy with ``kwargs`` added."""
        return Implements(self, **kwargs)


default_transport_capabilities = Implements(
    asynchronous=False,
    exchange_type=frozenset(["direct", "topic", "fanout", "headers"]),
    heartbeats=False,
)


class StdChannel:
    """Base class of transport channels."""

    no_ack_consumers: set[str] | None = None

    def Consumer(self, *args: Any, **kwargs: Any) -> Consumer:
        from kombu.messaging import Consumer

        return Consumer(self, *args, **kwargs)

    def Producer(self, *args: Any, **kwargs: Any) -> Producer:
        from kombu.messaging import Producer

        return Producer(self, *args, **kwargs)

    def get_bindings(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} cannot list bindings")

    def after_reply_message_received(self, queue: str) -> None:
        """Called after an RPC reply arrived on ``queue`` (may delete it)."""

    def prepare_queue_arguments(self, arguments: dict[str, Any] | None,
                                **kwargs: Any) -> dict[str, Any] | None:
        return arguments

    def __enter__(self) -> StdChannel:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class Management:
    """Broker management API (bindings listing and the like)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def get_bindings(self) -> Any:
        raise NotImplementedError(f"{type(self.transport).__name__} cannot list bindings")


# Transport's ``Management`` attribute shadows the class in its body.
_Management = Management


class Transport:
    """Base class of transports.

    Subclasses set :attr:`connection_errors` and :attr:`channel_errors` to the
    exception types of their driver that mean "the connection (channel) is
    unusable".  Optional :attr:`recoverable_connection_errors` and
    :attr:`recoverable_channel_errors` narrow those to errors a reconnect (a
    new channel) can repair; without them every connection error is taken as
    recoverable.
    """

    Channel: type[Any] = StdChannel
    Management: type[_Management] = _Management

    client: Connection | None = None
    default_port: int | None = None
    connection_errors: tuple[type[BaseException], ...] = (ConnectionError,)
    channel_errors: tuple[type[BaseException], ...] = (ChannelError,)
    driver_type = "N/A"
    driver_name = "N/A"
    #: When True, :class:`~kombu.Connection` passes the whole URL as hostname.
    can_parse_url = False
    implements = default_transport_capabilities.extend()

    def __init__(self, client: Connection, **kwargs: Any) -> None:
        self.client = client

    # -- the connection ------------------------------------------------------
    def establish_connection(self) -> Any:
        raise NotImplementedError("transports must implement establish_connection()")

    def close_connection(self, connection: Any) -> None:
        raise NotImplementedError("transports must implement close_connection()")

    def create_channel(self, connection: Any) -> Any:
        raise NotImplementedError("transports must implement create_channel()")

    def close_channel(self, channel: Any) -> None:
        raise NotImplementedError("transports must implement close_channel()")

    def drain_events(self, connection: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("transports must implement drain_events()")

    def verify_connection(self, connection: Any) -> bool:
        return True

    # -- heartbeats ----------------------------------------------------------
    def heartbeat_check(self, connection: Any, rate: float = 2) -> None:
        """Send and verify heartbeats; raise a connection error if the peer died."""

    def get_heartbeat_interval(self, connection: Any) -> float:
        return 0

    # -- event loop integration ----------------------------------------------
    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        pass

    def unregister_from_event_loop(self, connection: Any, loop: Any) -> None:
        pass

    def on_readable(self, connection: Any, loop: Any) -> None:
        reader = self.__dict__.get("_reader")
        if reader is None:
            reader = self.__dict__["_reader"] = self._make_reader(connection)
        reader(loop)

    def _make_reader(self, connection: Any, timeout: type[BaseException] = socket.timeout,
                     error: type[BaseException] = OSError,
                     _unavail: tuple[int, ...] = (errno.EAGAIN, errno.EINTR)
                     ) -> Callable[[Any], None]:
        drain_events = connection.drain_events

        def _read(loop: Any) -> None:
            if not connection.connected:
                raise ConnectionError("Socket was disconnected")
            try:
                drain_events(timeout=0)
            except timeout:
                return
            except error as exc:
                if getattr(exc, "errno", None) in _unavail:
                    return
                raise
            loop.call_soon(_read, loop)

        return _read

    # -- information ---------------------------------------------------------
    def driver_version(self) -> str:
        return "N/A"

    def qos_semantics_matches_spec(self, connection: Any) -> bool:
        return True

    def as_uri(self, uri: str, include_password: bool = False, mask: str = "**") -> str:
        """Render ``uri`` for display (transports that parse their own URLs)."""
        if include_password:
            return uri
        from kombu.utils.url import maybe_sanitize_url

        return maybe_sanitize_url(uri, mask)  # type: ignore[no-any-return]

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {}

    def get_manager(self, *args: Any, **kwargs: Any) -> _Management:
        return self.Management(self)

    @cached_property
    def manager(self) -> _Management:
        return self.get_manager()

    @property
    def supports_heartbeats(self) -> bool:
        return bool(self.implements.heartbeats)

    @property
    def supports_ev(self) -> bool:
        return bool(self.implements.asynchronous)
