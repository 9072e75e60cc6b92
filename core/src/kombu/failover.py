"""Host lists and failover strategies of a connection.

A :class:`~kombu.Connection` may be given several hosts: a list of URLs,
URLs joined by ``;``, or ``alternates=``.  The functions here split those
into the primary host and the rotation of alternates, check them, and pick
the strategy (an iterator factory) that decides the order in which a
failover visits them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from itertools import cycle
from typing import Any, Callable

from kombu.utils.url import parse_url, url_to_parts

__all__ = ("FailoverStrategy", "check_alternates", "completes_round", "failover_strategies",
           "get_failover_strategy", "shufflecycle", "split_host_port", "split_hosts", "with_primary")

#: Takes the list of hosts, returns an endless iterator over them.
FailoverStrategy = Callable[[Sequence[str]], Iterator[str]]


def shufflecycle(hosts: Sequence[str]) -> Iterator[str]:
    """Yield the hosts in an order shuffled once, then round and round.

    The first host comes first (the connection starts there and skips it);
    the others follow in random order, so connections spread over the hosts,
    and any ``len(hosts)`` attempts in a row, from wherever a failover
    starts, reach every host.
    """
    hosts = list(hosts)
    rest = hosts[1:]
    random.shuffle(rest)
    return cycle(hosts[:1] + rest)


#: The failover strategies known by name.
failover_strategies: dict[str, FailoverStrategy] = {
    "round-robin": cycle,
    "shuffle": shufflecycle,
}


def get_failover_strategy(strategy: Any,
                          strategies: dict[str, FailoverStrategy] | None = None
                          ) -> FailoverStrategy:
    """The strategy named by ``strategy`` (``None`` is round-robin), or
    ``strategy`` itself when it is callable; :exc:`ValueError` otherwise."""
    known = failover_strategies if strategies is None else strategies
    found = known.get(strategy or "round-robin", strategy)
    if not callable(found):
        raise ValueError(
            f"Unknown failover_strategy {strategy!r}: use one of "
            f"{', '.join(map(repr, known))} or a callable")
    return found  # type: ignore[no-any-return]


def split_hosts(hostname: str | Sequence[str] | None,
                alternates: Sequence[str] | None) -> tuple[str | None, list[str], bool]:
    """Split a connection's host argument into ``(primary, alternates, single)``.

    ``hostname`` is a host or URL, URLs joined by ``;`` or a list of URLs;
    the hosts it holds come first in the alternates, ahead of
    ``alternates``.  ``single`` tells whether ``hostname`` was one host, in
    which case :func:`with_primary` adds it to the rotation.  An empty list
    raises :exc:`ValueError`.
    """
    alt = list(alternates or ())
    single = isinstance(hostname, str) and ";" not in hostname
    if hostname is not None and not isinstance(hostname, str):
        hosts = list(hostname)
        if not hosts:
            raise ValueError("Connection() got an empty list of hosts: pass at least one URL")
        alt = hosts + alt
        hostname = hosts[0]
    if hostname and ";" in hostname:
        hosts = [h.strip() for h in hostname.split(";") if h.strip()]
        alt = hosts + alt
        hostname = hosts[0]
    return hostname, alt, single


def with_primary(alternates: list[str], primary: str, port: int | None,
                 uri_prefix: str | None) -> list[str]:
    """``alternates`` with ``primary`` inserted first unless it is already
    listed, so that a failover comes back to the primary host."""
    if alternates and not _listed(primary, port, uri_prefix, alternates):
        alternates.insert(0, primary)
    return alternates


def check_alternates(urls: Sequence[str]) -> None:
    """Raise the :exc:`ValueError` of the first malformed URL in ``urls`` now,
    not when a failover reaches it (``prefix+scheme://`` URLs are the
    transport's to parse)."""
    for url in urls:
        if "://" in url and "+" not in url[:url.index("://")]:
            parse_url(url)


def completes_round(retries: int, hosts: int) -> bool:
    """Whether attempt number ``retries`` (from 0) is the last host of a round."""
    return not (retries + 1) % hosts if hosts else True


def split_host_port(params: dict[str, Any]) -> None:
    """Check ``params['hostname']``, a host given without a scheme; a
    ``host:port`` form sets ``params['port']`` unless it is set already."""
    host = params["hostname"]
    if any(c in host for c in "@/?#") or any(c.isspace() for c in host):
        shown = host.split("@", 1)[-1] if "@" in host else host
        raise ValueError(
            f"Connection() got {('...@' + shown) if '@' in host else shown!r} as the host "
            f"name, which is not one: pass a URL with its scheme (e.g. 'amqp://user:"
            f"password@host:5672//') or the host alone with userid=, password= and port=")
    if host.count(":") == 1:  # host:port (an IPv6 literal has several colons)
        name, _, port = host.partition(":")
        if not port.isdigit():
            raise ValueError(f"Connection() got the host name {host!r}: the part after ':' "
                             f"must be a port number")
        params["hostname"] = name
        if params["port"] is None:
            params["port"] = int(port)


def _listed(host: str, port: int | None, uri_prefix: str | None, urls: list[str]) -> bool:
    """Whether ``host`` is in ``urls``: a URL (with or without its ``uri_prefix``)
    or a host name and port, as ``clone()`` and unpickling pass them."""
    if host in urls or (uri_prefix and f"{uri_prefix}+{host}" in urls):
        return True
    if "://" in host:
        return False
    for url in urls:
        if "://" not in url or "+" in url[:url.index("://")]:
            continue
        parts = url_to_parts(url)
        if parts.hostname == host and (port is None or parts.port in (None, port)):
            return True
    return False
