"""Parse and build broker URLs.

A broker URL has the shape ``transport://user:password@host:port/vhost?options``.
User names, passwords, host names and the virtual host are percent-decoded;
empty parts become ``None``.  The path minus its first ``/`` is the virtual
host, so ``amqp://host//`` names the vhost ``'/'`` and ``redis://host/1`` the
database ``'1'``.  IPv6 literals are written in brackets (``amqp://[::1]:5672//``)
and parse to the bare address.

A malformed URL raises :exc:`ValueError` naming the part at fault and
showing the URL with its password masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import ascii_letters, digits, hexdigits
from typing import Any, Callable, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlparse

__all__ = (
    "InvalidCertReqs",
    "as_url",
    "coerce_query_value",
    "connection_query_param",
    "mask_password",
    "maybe_sanitize_url",
    "parse_ssl_cert_reqs",
    "parse_url",
    "sanitize_url",
    "url_to_parts",
    "urlparse",
    "urlparts",
)


class urlparts(NamedTuple):
    """The parts of a URL, decoded (see :func:`url_to_parts`)."""

    scheme: str
    hostname: str | None
    port: int | None
    username: str | None
    password: str | None
    path: str | None
    query: dict[str, str]


# scheme :// netloc path ? query  (a #fragment is ignored, as urllib does)
_URL = re.compile(r"([^:/?#@]*)://([^/?#]*)([^?#]*)(?:\?([^#]*))?")
_SCHEME_CHARS = frozenset(ascii_letters + digits + "+-._")
_IPV6_CHARS = frozenset(hexdigits + ":.")
_FALSE = frozenset(("false", "0", "no", "off"))
_TRUE = frozenset(("true", "1", "yes", "on"))
# parse_url() fills these keys itself: a query parameter may not repeat them.
_RESERVED = frozenset(("transport", "hostname", "port", "userid", "password", "virtual_host"))


def _mask_text(url: str, mask: str = "**") -> str:
    """Mask whatever could be a password in ``url``, even a malformed one.

    Everything between the first ``:`` of the credentials and the last ``@``
    is replaced, which may hide more than the password but never less.
    """
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    start = head.find("://")
    colon = head.find(":", start + 3 if start >= 0 else 0)
    if colon < 0:
        return url
    return f"{head[:colon + 1]}{mask}@{tail}"


def _invalid(url: str, problem: str) -> ValueError:
    return ValueError(f"Invalid broker URL {_mask_text(url)!r}: {problem}")


def url_to_parts(url: str) -> urlparts:
    """Split ``url`` into a :class:`urlparts` tuple of decoded parts.

    The scheme and host name are lower-cased; the query is a dict of its
    (decoded) parameters, the last one winning when a name repeats.
    """
    match = _URL.match(url)
    if match is None:
        if "://" not in url:
            raise _invalid(url, "it has no '://' after the transport name "
                                "(write e.g. 'amqp://host//' or 'memory://')")
        raise _invalid(url, "the part before '://' is not a transport name")
    scheme, netloc, path, query = match.groups()
    if not scheme or not _SCHEME_CHARS.issuperset(scheme):
        raise _invalid(url, "the part before '://' must be a transport name made of "
                            "letters, digits, '+', '-', '.' or '_'")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        if has_password:
            password = unquote(secret) or None
    port_text = None
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise _invalid(url, "the IPv6 host has a '[' without a closing ']'")
        host = netloc[1:end]
        address = host.partition("%")[0]
        if ":" not in address or not _IPV6_CHARS.issuperset(address):
            raise _invalid(url, "the host in brackets is not an IPv6 address")
        rest = netloc[end + 1:]
        if rest:
            if rest[0] != ":":
                raise _invalid(url, "only ':port' may follow the ']' of an IPv6 host")
            port_text = rest[1:]
    else:
        if "]" in netloc or "[" in netloc:
            raise _invalid(url, "the host has an unbalanced '[' or ']' "
                                "(write an IPv6 host as '[::1]')")
        host, _, port_text = netloc.partition(":")
    port = None
    if port_text:
        if (len(port_text) > 5 or not (port_text.isdigit() and port_text.isascii())
                or int(port_text) > 65535):
            raise _invalid(url, "the port must be a number from 0 to 65535")
        port = int(port_text)
    return urlparts(
        scheme.lower(),
        unquote(host.lower()) or None if host else None,
        port,
        username,
        password,
        unquote(path[1:]) or None if len(path) > 1 else None,
        dict(parse_qsl(query)) if query else {},
    )


class InvalidCertReqs(KeyError, ValueError):
    """An ``ssl_cert_reqs`` value that names no certificate requirement.

    A :exc:`KeyError`, as kombu raises, and a :exc:`ValueError`; its message
    lists the accepted values.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


#: kombu 5.x's name of :func:`url_to_parts` (Celery imports it).
_parse_url = url_to_parts


def __getattr__(name: str) -> Any:
    # ``ssl_available``: kombu 5.x's flag for "ssl can be imported", found
    # without importing ssl (which URLs without TLS never need).
    if name == "ssl_available":
        from importlib.util import find_spec

        return find_spec("_ssl") is not None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_ssl_cert_reqs(query_value: str | None) -> int | None:
    """The :mod:`ssl` ``CERT_*`` constant that ``query_value`` names.

    Accepts ``required``, ``optional`` and ``none`` or the constant names
    (``CERT_REQUIRED``, ...), as kombu does, and also in any other case;
    ``None`` gives ``None``.  An unknown value raises
    :exc:`InvalidCertReqs` (a :exc:`KeyError`, as in kombu, and a
    :exc:`ValueError`) listing the accepted ones.
    """
    if query_value is None:
        return None
    import ssl  # only URLs that configure TLS pay for importing ssl

    name = query_value.upper()
    if not name.startswith("CERT_"):
        name = "CERT_" + name
    if name not in ("CERT_REQUIRED", "CERT_OPTIONAL", "CERT_NONE"):
        raise InvalidCertReqs(f"ssl_cert_reqs={query_value!r} is not a certificate "
                              f"requirement: use 'required', 'optional' or 'none' "
                              f"(or CERT_REQUIRED, CERT_OPTIONAL, CERT_NONE)")
    return ssl.VerifyMode[name]


def _ssl_options(query: dict[str, Any]) -> None:
    """Move the ``ssl_*`` parameters of ``query`` into a ``query['ssl']`` dict."""
    options: dict[str, Any] = {}
    for key in [key for key in query if key.startswith("ssl_")]:
        value = query.pop(key)
        if key == "ssl_check_hostname":
            low = value.lower()
            if low not in _FALSE and low not in _TRUE:
                raise ValueError(f"ssl_check_hostname={value!r} is not a boolean: "
                                 f"use 'true' or 'false'")
            value = low in _TRUE
        elif key == "ssl_cert_reqs":
            value = parse_ssl_cert_reqs(value)
        options[key] = value
    if not options:
        return
    enabled = query.get("ssl")
    if isinstance(enabled, str) and enabled.lower() in _FALSE:
        raise ValueError(f"The URL sets ssl={enabled} and also ssl_* options "
                         f"({', '.join(sorted(options))}): drop one or the other")
    query["ssl"] = options


def parse_url(url: str) -> dict[str, Any]:
    """Parse a broker URL into the keyword arguments of a Connection.

    The keys are ``transport`` (the URL scheme), ``hostname``, ``port``,
    ``userid``, ``password`` and ``virtual_host``, plus one per query
    parameter.  As in kombu, ``transport`` is the scheme as written:
    ``amqp://`` gives ``'amqp'``, which resolves to the py-amqp transport
    when the connection is made.

    Query parameters named ``ssl_*`` are gathered in an ``ssl`` dict, with
    ``ssl_cert_reqs`` turned into the :mod:`ssl` ``CERT_*`` constant and
    ``ssl_check_hostname`` into a bool.  Unlike kombu, ``ssl_check_hostname``
    accepts ``false/0/no/off`` (kombu only ``false``) and rejects other
    words, and a query parameter that repeats one of the keys above raises
    :exc:`ValueError` (kombu raises :exc:`TypeError`).
    """
    scheme, host, port, user, password, path, query = url_to_parts(url)
    result = {"transport": scheme, "hostname": host, "port": port,
              "userid": user, "password": password, "virtual_host": path}
    if query:
        clash = _RESERVED.intersection(query)
        if clash:
            raise _invalid(url, f"the query repeats {', '.join(sorted(clash))}, which the "
                                f"URL itself sets: remove it from the query")
        _ssl_options(query)
        result.update(query)
    return result


def _url_bool(value: str) -> bool:
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("not a boolean (use true or false)")


def _url_ssl(value: Any) -> Any:
    return value if not isinstance(value, str) else _url_bool(value)


#: Connection arguments a URL's query may set, and how their text converts.
CONNECTION_QUERY_PARAMS: dict[str, Callable[[Any], Any]] = {
    "heartbeat": float,
    "connect_timeout": float,
    "login_method": str,
    "insist": _url_bool,
    "ssl": _url_ssl,
    "failover_strategy": str,
}


def connection_query_param(url: str, key: str, value: Any) -> Any:
    """``value`` of query parameter ``key`` (one of :data:`CONNECTION_QUERY_PARAMS`)
    converted to the type of the Connection argument it sets.

    ``ssl`` keeps a dict (the ``ssl_*`` options) and turns text into a bool.
    A value that does not convert raises :exc:`ValueError` naming the key and
    showing ``url`` with its password masked.
    """
    try:
        return CONNECTION_QUERY_PARAMS[key](value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Invalid broker URL {maybe_sanitize_url(url)!r}: the query sets "
                         f"{key}={value!r}, which is {exc}") from None


def coerce_query_value(value: Any) -> Any:
    """Turn query text into the bool, int or float it spells, else keep it.

    ``true/yes/on`` and ``false/no/off`` (any case) are booleans; ``1`` and
    ``0`` are numbers.  Anything that is not a string is returned as is.
    """
    if not isinstance(value, str):
        return value
    low = value.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _host_text(host: str) -> str:
    if host.startswith("["):
        return host
    if ":" in host and _is_ipv6(host):
        return f"[{quote(host, safe=':')}]"
    return quote(host, safe="")


def _is_ipv6(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(host.split("%", 1)[0])  # without a zone (fe80::1%eth0)
    except ValueError:
        return False
    return True


def as_url(scheme: str, host: str | None = None, port: int | None = None,
           user: str | None = None, password: str | None = None, path: str | None = None,
           query: Mapping[str, Any] | str | None = None, sanitize: bool = False,
           mask: str = "**") -> str:
    """Build a URL from its parts (the reverse of :func:`url_to_parts`).

    The user name, password and host are percent-encoded; an IPv6 host is
    put in brackets.  ``path`` (the virtual host) is used as given, so quote
    it first if it may hold reserved characters, as kombu requires.  With
    ``sanitize`` the password is replaced by ``mask``.  Unlike kombu, which
    ignores it, ``query`` (a mapping or an encoded string) is appended.
    """
    parts = [scheme, "://"]
    if user or password:
        if user:
            parts.append(quote(user, safe=""))
        if password:
            parts.append(":")
            parts.append(mask if sanitize else quote(password, safe=""))
        parts.append("@")
    if host:
        parts.append(_host_text(host))
    if port:
        parts.append(f":{port}")
    parts.append("/")
    if path:
        parts.append(path)
    if query:
        parts.append("?")
        parts.append(query if isinstance(query, str)
                     else urlencode(query, safe="/", quote_via=quote))
    return "".join(parts)


def _alternates(url: str) -> list[str] | None:
    """The URLs of a ``;``-joined failover list, or None if ``url`` is not one.

    Every part must look like a URL; otherwise the ``;`` may be part of a
    password, and ``url`` is taken as one URL.
    """
    if ";" not in url:
        return None
    parts = [part.strip() for part in url.split(";")]
    if len(parts) < 2 or not all("://" in part for part in parts):
        return None
    return parts


def sanitize_url(url: str, mask: str = "**") -> str:
    """``url`` with its password replaced by ``mask``.

    As in kombu the query is dropped (it may hold credentials too); the
    virtual host is re-quoted so that the result is a valid URL.  Each URL of
    a ``;``-joined failover list is sanitized (kombu masked the first only).
    """
    alternates = _alternates(url)
    if alternates is not None:
        return ";".join(sanitize_url(part, mask) for part in alternates)
    scheme, host, port, user, password, path, _ = url_to_parts(url)
    return as_url(scheme, host, port, user, password,
                  quote(path, safe="/") if path else None, sanitize=True, mask=mask)


def mask_password(text: str, password: str | None, mask: str = "**") -> str:
    """``text`` with every occurrence of ``password`` (plain or percent-encoded)
    replaced by ``mask``.

    Only whole occurrences are masked: one that is part of a longer word or
    number is left alone, so a short password does not garble the message
    (``"o"`` leaves "Connection refused" as it is).
    """
    if not password:
        return text
    forms = sorted({password, quote(password, safe="")}, key=len, reverse=True)
    return re.sub("|".join(map(_whole, forms)), mask, text)


def _whole(word: str) -> str:
    """A regex for ``word`` not glued to letters or digits at its alphanumeric ends."""
    head = r"(?<![A-Za-z0-9])" if word[0].isalnum() else ""
    tail = r"(?![A-Za-z0-9])" if word[-1].isalnum() else ""
    return f"{head}{re.escape(word)}{tail}"


def maybe_sanitize_url(url: Any, mask: str = "**") -> Any:
    """Sanitize ``url`` if it is a URL string; return anything else as is.

    A malformed URL is masked as text instead of raising, so this is safe
    to call from ``repr`` and log messages.  Each URL of a ``;``-joined
    failover list is sanitized.
    """
    if isinstance(url, str) and "://" in url:
        alternates = _alternates(url)
        if alternates is not None:
            return ";".join(maybe_sanitize_url(part, mask) for part in alternates)
        try:
            return sanitize_url(url, mask)
        except ValueError:
            return _mask_text(url, mask)
    return url
