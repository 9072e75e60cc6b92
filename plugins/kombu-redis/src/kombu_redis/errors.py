"""The Redis transport's errors: redis-py's classes, and kombu's view of them.

Errors the transport raises in place of redis-py's are instances of both:
a refused login is kombu's :exc:`~kombu.exceptions.AccessRefused` (never
retried) *and* the redis-py class the server's reply maps to
(:exc:`redis.exceptions.AuthenticationError`, ...), so ``except`` clauses
written for kombu 5.x, which let redis-py's errors through, still catch them.

:func:`get_redis_error_classes` gives ``(connection_errors, channel_errors)``
as kombu 5.x's function of that name does (Celery's Redis result backend
retries on them).
"""

from __future__ import annotations

from typing import NamedTuple

from kombu.exceptions import AccessRefused, InconsistencyError
from kombu.exceptions import ConnectionError as KombuConnectionError
from kombu.transport import virtual
from redis import exceptions as rexc

__all__ = ("AuthenticationRefused", "AuthorizationRefused", "InvalidDatabase",
           "PermissionRefused", "TLSVerificationError", "error_classes_t",
           "get_redis_ConnectionError", "get_redis_error_classes", "refused_as")


class error_classes_t(NamedTuple):
    """The error classes of a transport, by how the connection survives them."""

    connection_errors: tuple[type[BaseException], ...]
    channel_errors: tuple[type[BaseException], ...]


class AuthenticationRefused(AccessRefused, rexc.AuthenticationError):
    """Redis refused the user name or password (AUTH failed)."""


class AuthorizationRefused(AccessRefused, rexc.AuthorizationError):
    """Redis refused the connection's authorization."""


class PermissionRefused(AccessRefused, rexc.NoPermissionError):
    """The ACL rules of the user forbid a command the handshake needs."""


class TLSVerificationError(KombuConnectionError):
    """The Redis server's TLS certificate could not be verified (not retried).

    Not a :exc:`redis.exceptions.ConnectionError` (which kombu 5.x let
    through here): that class is retried, and this failure cannot heal.
    """


class InvalidDatabase(KombuConnectionError, ValueError, rexc.ResponseError):
    """The virtual host names no database of the Redis server (not retried).

    Also the :exc:`redis.exceptions.ResponseError` kombu 5.x let through.
    """


def refused_as(exc: BaseException, message: str) -> AccessRefused:
    """An :exc:`AccessRefused` with ``message`` that is also ``exc``'s redis-py class."""
    cls: type[AccessRefused]
    if isinstance(exc, rexc.NoPermissionError):
        cls = PermissionRefused
    elif isinstance(exc, rexc.AuthorizationError):
        cls = AuthorizationRefused
    elif isinstance(exc, rexc.AuthenticationError):
        cls = AuthenticationRefused
    else:
        cls = AccessRefused
    return cls(message)


def get_redis_error_classes() -> error_classes_t:
    """``(connection_errors, channel_errors)`` of the Redis transport, redis-py's included."""
    return error_classes_t(
        virtual.Transport.connection_errors + (
            InconsistencyError, OSError,
            rexc.ConnectionError, rexc.BusyLoadingError, rexc.AuthenticationError,
            rexc.TimeoutError),
        virtual.Transport.channel_errors + (
            rexc.DataError, rexc.InvalidResponse, rexc.ResponseError),
    )


def get_redis_ConnectionError() -> type[rexc.ConnectionError]:
    """redis-py's ``ConnectionError`` class."""
    return rexc.ConnectionError
