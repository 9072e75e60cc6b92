"""Exceptions raised by kombu.

The hierarchy::

    KombuError
    ├── OperationalError            a recoverable transport connection error
    ├── SerializationError
    │   ├── EncodeError
    │   └── DecodeError
    ├── NotBoundError
    ├── MessageStateError
    ├── LimitExceeded
    │   ├── ConnectionLimitExceeded
    │   ├── ChannelLimitExceeded
    │   └── PoolTimeout             (also a TimeoutError)
    ├── VersionMismatch
    ├── SerializerNotInstalled
    │   └── ContentDisallowed
    ├── ConnectionError
    │   ├── RecoverableConnectionError
    │   │   └── ResourceError       the broker ran out of a resource (AMQP 506)
    │   ├── InconsistencyError
    │   └── AccessRefused           wrong credentials: never retried
    ├── ChannelError
    ├── TransportError
    │   ├── UnknownTransport        (also a KeyError, as kombu's is)
    │   ├── TransportNotInstalled   (also a KeyError)
    │   ├── TransportLoadError      (also an ImportError)
    │   └── TransportConflict
    └── HttpError

Every exception pickles with its arguments, so it can cross a process pool.
"""

from __future__ import annotations

from socket import timeout as TimeoutError
from typing import Any, NoReturn

__all__ = (
    "AccessRefused",
    "BatchPublishError",
    "ChannelError",
    "ChannelLimitExceeded",
    "ConnectionError",
    "ConnectionLimitExceeded",
    "ContentDisallowed",
    "DecodeError",
    "EncodeError",
    "HttpError",
    "InconsistencyError",
    "KombuError",
    "LimitExceeded",
    "MessageStateError",
    "NotBoundError",
    "OperationalError",
    "PoolTimeout",
    "RecoverableConnectionError",
    "ResourceError",
    "SerializationError",
    "SerializerNotInstalled",
    "TimeoutError",
    "TransportConflict",
    "TransportError",
    "TransportLoadError",
    "TransportNotInstalled",
    "UnknownTransport",
    "VersionMismatch",
    "reraise",
)


def reraise(tp: type[BaseException], value: BaseException, tb: Any = None) -> NoReturn:
    """Raise ``value`` (of type ``tp``) with traceback ``tb``."""
    if value.__traceback__ is not tb:
        raise value.with_traceback(tb)
    raise value


class KombuError(Exception):
    """Common base class for all kombu exceptions."""


class OperationalError(KombuError):
    """Recoverable message transport connection error."""


class SerializationError(KombuError):
    """Failed to serialize or deserialize a message body."""


class EncodeError(SerializationError):
    """Cannot encode an object."""


class DecodeError(SerializationError):
    """Cannot decode an object."""


class NotBoundError(KombuError):
    """Trying to call a channel-dependent method on an unbound entity."""


class BatchPublishError(KombuError):
    """A batch of messages failed to publish, and which ones arrived is unknown.

    Defined for code that catches it; the core's Producer has no batch API.
    """


class MessageStateError(KombuError):
    """The message has already been acknowledged, rejected or requeued."""


class LimitExceeded(KombuError):
    """A resource limit was exceeded."""


class ConnectionLimitExceeded(LimitExceeded):
    """The maximum number of simultaneous connections was exceeded."""


class ChannelLimitExceeded(LimitExceeded):
    """The maximum number of simultaneous channels was exceeded."""


class PoolTimeout(LimitExceeded, TimeoutError):
    """No resource became free in a pool before the acquire timeout."""


class VersionMismatch(KombuError):
    """A library dependency has an unsupported version."""


class SerializerNotInstalled(KombuError):
    """The serializer named by a message or a producer is not installed."""


class ContentDisallowed(SerializerNotInstalled):
    """The consumer does not accept the content type of a message."""


class ConnectionError(KombuError):
    """A connection-level error: the connection is unusable."""


class RecoverableConnectionError(ConnectionError):
    """A connection error that a reconnect can repair."""


class InconsistencyError(ConnectionError):
    """Data or environment is inconsistent (e.g. a missing routing table)."""


class AccessRefused(ConnectionError):
    """The broker refused the credentials; retrying cannot succeed."""


class ChannelError(KombuError):
    """A channel-level error: the channel is unusable, the connection is not."""


class ResourceError(RecoverableConnectionError):
    """The broker ran out of a resource (memory, disk, channel ids) or refused one.

    A connection-level error, as AMQP's 506 and kombu 5.x's class (amqp's) are.
    """


class TransportError(KombuError):
    """Base class of the errors raised while resolving a transport."""


class UnknownTransport(TransportError, KeyError):
    """No installed transport answers to the requested name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class TransportNotInstalled(UnknownTransport):
    """The transport is shipped by a distribution that is not installed."""


class TransportLoadError(TransportError, ImportError):
    """A transport plugin was found but could not be loaded."""

    def __init__(self, message: str, *args: Any) -> None:
        TransportError.__init__(self, message, *args)
        self.msg = message

    def __str__(self) -> str:
        return self.msg

    def __reduce__(self) -> Any:
        return (type(self), self.args)


class TransportConflict(TransportError):
    """Two plugins claim one transport name and the user must choose."""


class HttpError(KombuError):
    """An HTTP client error, for HTTP based transports."""

    def __init__(self, code: int, message: str | None = None, response: Any = None) -> None:
        self.code = code
        self.message = message
        self.response = response
        super().__init__(code, message, response)

    def __str__(self) -> str:
        return f"HTTP {self.code}: {self.message}"
