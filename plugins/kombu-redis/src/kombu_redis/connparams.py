"""redis-py connection parameters from a kombu Connection, and connect errors.

TLS: ``rediss://`` (or ``Connection(ssl=True)`` / ``ssl={...}``) verifies the
server certificate by default; verification is off only when asked
for: ``ssl_cert_reqs=none`` in the URL query or in the ``ssl`` dict (which
also accepts :data:`ssl.CERT_NONE`).  Option names are redis-py's
``ssl_*`` keyword arguments; the ``ssl`` dict may leave out the prefix.
"""

from __future__ import annotations

import numbers
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from kombu.exceptions import AccessRefused
from kombu.utils.url import InvalidCertReqs
from redis import exceptions as rexc

from kombu_redis.errors import InvalidDatabase, TLSVerificationError, refused_as

__all__ = ("InvalidDatabase", "TLSVerificationError", "connect_error", "connparams", "credential_provider",
           "prepare_virtual_host", "ssl_params")

DEFAULT_DB = 0
_HAS_PROTOCOL = redis.VERSION >= (5,)

_CERT_REQS = {"none": ssl.CERT_NONE, "cert_none": ssl.CERT_NONE,
              "optional": ssl.CERT_OPTIONAL, "cert_optional": ssl.CERT_OPTIONAL,
              "required": ssl.CERT_REQUIRED, "cert_required": ssl.CERT_REQUIRED}
_SSL_OPTIONS = frozenset({
    "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data",
    "ssl_ca_path", "ssl_check_hostname", "ssl_password", "ssl_min_version",
    "ssl_ciphers", "ssl_validate_ocsp", "ssl_validate_ocsp_stapled",
    "ssl_ocsp_context", "ssl_ocsp_expected_cert",
})


def _cert_reqs(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return _CERT_REQS[value.strip().lower()]
        except KeyError:
            raise InvalidCertReqs(f"ssl_cert_reqs must be one of none, optional, "
                                  f"required; got {value!r}") from None
    return value


def ssl_params(client: Any) -> dict[str, Any] | None:
    """redis-py TLS options for ``client`` (a Connection), or None for plain TCP."""
    wanted = client.ssl
    scheme = client.transport_cls if isinstance(client.transport_cls, str) else ""
    if not wanted and scheme not in ("rediss", "redisclusters"):
        return None
    options: dict[str, Any] = {}
    if isinstance(wanted, dict):
        for key, value in wanted.items():
            options[key if key.startswith("ssl_") else "ssl_" + key] = value
    for key, value in client.transport_options.items():
        if key.startswith("ssl_"):
            options.setdefault(key, value)
    unknown = set(options) - _SSL_OPTIONS
    if unknown:
        raise ValueError(f"Unknown TLS option(s) {sorted(unknown)}; the known ones are "
                         f"{', '.join(sorted(_SSL_OPTIONS))}")
    options["ssl_cert_reqs"] = reqs = _cert_reqs(options.get("ssl_cert_reqs", ssl.CERT_REQUIRED))
    if reqs == ssl.CERT_NONE:
        options.setdefault("ssl_check_hostname", False)
    return options


def prepare_virtual_host(vhost: Any) -> int:
    """The database number a virtual host names (``'/'`` and empty: 0)."""
    if not isinstance(vhost, numbers.Integral) and (not vhost or vhost == "/"):
        return DEFAULT_DB
    text = vhost[1:] if isinstance(vhost, str) and vhost.startswith("/") else vhost
    try:
        db = int(text)
    except ValueError:
        db = -1
    if db < 0:
        raise InvalidDatabase(
            f"The virtual host of a Redis URL is a database number from 0 to the server's "
            f"'databases' setting minus one (0 to 15 by default), not {text!r}: use "
            "redis://host:port/<db>.")
    return db


def connparams(channel: Any) -> dict[str, Any]:
    """Keyword arguments of :class:`redis.ConnectionPool` for ``channel``."""
    client = channel.connection.client
    params: dict[str, Any] = {
        "host": client.hostname or "127.0.0.1",
        "port": client.port or channel.connection.default_port,
        "username": client.userid,
        "password": client.password,
        "max_connections": channel.max_connections,
        "socket_timeout": channel.socket_timeout,
        # Connection(connect_timeout=...) bounds connecting unless the
        # transport option says otherwise (kombu 5.x ignored it for Redis).
        "socket_connect_timeout": (client.connect_timeout if channel.socket_connect_timeout is None
                                   else channel.socket_connect_timeout),
        "socket_keepalive": channel.socket_keepalive,
        "socket_keepalive_options": channel.socket_keepalive_options,
        "health_check_interval": channel.health_check_interval,
        "retry_on_timeout": bool(channel.retry_on_timeout),
        "client_name": channel.client_name,
        "connection_class": channel.connection_class,
    }
    if _HAS_PROTOCOL:
        # RESP2: the waiter reads PUB/SUB replies itself, which RESP3 (the
        # default of redis-py 8) would route to push handlers instead.
        params["protocol"] = 2
    tls = ssl_params(client)
    if tls is not None:
        params.update(tls)
        params["connection_class"] = channel.connection_class_ssl
    host = params["host"]
    if "://" in host:  # redis+socket:///path/to/redis.sock
        parts = urlsplit(host)
        if parts.scheme == "socket":
            for name in ("host", "port", "socket_connect_timeout", "socket_keepalive",
                         "socket_keepalive_options"):
                params.pop(name, None)
            params["connection_class"] = redis.UnixDomainSocketConnection
            params["path"] = "/" + unquote(parts.path).lstrip("/")
        if parts.username:
            params["username"] = unquote(parts.username)
        if parts.password:
            params["password"] = unquote(parts.password)
    params["db"] = prepare_virtual_host(client.virtual_host)
    provider = credential_provider(channel)
    if provider is not None:
        # As kombu 5.x: the provider's credentials replace those of the URL.
        params["credential_provider"] = provider
        params.pop("username", None)
        params.pop("password", None)
    return params


_UNSET: Any = object()


def credential_provider(channel: Any) -> Any:
    """The redis.CredentialProvider of ``Connection(credential_provider=...)``
    or of the ``credential_provider`` transport option (an instance, or the
    dotted name of a class to instantiate), else None.

    Resolved once per channel (a dotted name is instantiated once), then
    the same object is returned.
    """
    cached = getattr(channel, "_credential_provider_resolved", _UNSET)
    if cached is not _UNSET:
        return cached
    provider = getattr(channel.connection.client, "credential_provider", None) \
        or channel.credential_provider
    if not provider:
        provider = None
    else:
        if isinstance(provider, str):
            from kombu.utils.imports import symbol_by_name

            provider = symbol_by_name(provider)()
        if not isinstance(provider, redis.CredentialProvider):
            raise ValueError(f"credential_provider must be a redis.CredentialProvider (or the "
                             f"dotted name of its class), not {type(provider).__name__}")
    try:
        channel._credential_provider_resolved = provider
    except AttributeError:  # an object that takes no attributes: resolved every time
        pass
    return provider


def connect_error(channel: Any, exc: BaseException, where: str | None = None) -> BaseException:
    """The error to raise for a failure to connect (never shows a password).

    ``where`` names the server (``host:port``; by default the URL's).  An
    :exc:`AccessRefused` already worded so is returned as it is.
    """
    if isinstance(exc, AccessRefused):
        return exc
    client = channel.connection.client
    if where is None:
        where = f"{client.hostname or '127.0.0.1'}:{client.port or channel.connection.default_port}"
    if isinstance(exc, (rexc.AuthenticationError, rexc.AuthorizationError,
                        rexc.NoPermissionError)):
        if credential_provider(channel) is not None:
            return refused_as(exc,
                f"Redis at {where} refused the credentials of the credential provider "
                f"({exc}). Check what it returns (or the ACL rules of that user); retrying "
                "will not help.")
        user = client.userid or "default"
        return refused_as(exc,
            f"Redis at {where} refused the credentials of user {user!r} ({exc}). Check the "
            "user name and password of the broker URL (or the ACL rules of that user); "
            "retrying will not help.")
    if isinstance(exc, rexc.ResponseError) and _is_select_error(exc):
        return _database_error(channel, where, exc)
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError) or (
            isinstance(exc, rexc.ConnectionError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)):
        return TLSVerificationError(
            f"The TLS certificate of the Redis server at {where} could not be verified "
            f"({exc}). Pass its certificate authority (ssl={{'ssl_ca_certs': path}} or "
            "?ssl_ca_certs=path in the URL), or turn verification off explicitly with "
            "ssl_cert_reqs=none.")
    return exc


def _is_select_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the server refusing the SELECT of the connection handshake."""
    text = str(exc)
    return "DB index" in text or "SELECT is not allowed" in text


def _database_error(channel: Any, where: str, exc: BaseException) -> InvalidDatabase:
    """The error for a database number the server refused, with what it allows."""
    db = channel.pool.connection_kwargs.get("db", DEFAULT_DB)
    if "SELECT is not allowed" in str(exc):
        return InvalidDatabase(
            f"Redis at {where} is a cluster node, which has database 0 only, not {db} "
            f"({exc}). Use redis://host:port/0; retrying will not help.")
    count = _server_databases(channel)
    allowed = (f"it has databases 0 to {count - 1} ('databases {count}' in its configuration)"
               if count else "it has databases 0 to its 'databases' setting minus one "
               "(0 to 15 by default)")
    return InvalidDatabase(
        f"Redis at {where} has no database {db} ({exc}): {allowed}. Use one of those "
        "numbers in the broker URL (redis://host:port/<db>), or raise 'databases' in the "
        "server's configuration; retrying will not help.")


def _server_databases(channel: Any) -> int | None:
    """The server's ``databases`` setting, or None if it cannot be read."""
    conn = channel.new_connection(db=DEFAULT_DB)
    try:
        conn.connect()
        conn.send_command("CONFIG", "GET", "databases")
        reply = conn.read_response()
        return int(reply[1])
    except (rexc.RedisError, OSError, IndexError, TypeError, ValueError):
        return None
    finally:
        conn.disconnect()
