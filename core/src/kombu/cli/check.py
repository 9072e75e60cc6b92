"""``kombu check URL``: connect once, with bounded timeouts, and describe the broker."""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import time
from typing import Any, Callable

from kombu.cli.common import deadline, display_url, elapsed_ms, open_connection

__all__ = ["probe", "run"]

ROUND_TRIPS = 5


def _tls_state(sock: Any) -> dict[str, Any]:
    if isinstance(sock, ssl.SSLSocket):
        cipher = sock.cipher()
        return {"enabled": True, "version": sock.version(),
                "cipher": cipher[0] if cipher else None,
                "verified": sock.context.verify_mode != ssl.CERT_NONE}
    return {"enabled": False}


def _median_ms(call: Callable[[], object], times: int = ROUND_TRIPS) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        samples.append(elapsed_ms(start))
    return statistics.median(samples)


def _probe_redis(conn: Any) -> dict[str, Any]:
    channel = conn.default_channel
    client = channel.client
    info = client.info("server")
    mode = info.get("redis_mode", "standalone")
    name = "Valkey" if "valkey_version" in info else "Redis"
    version = info.get("valkey_version") or info.get("redis_version", "?")
    link = getattr(channel, "link", None)
    sock = getattr(link, "sock", None)
    interval = getattr(channel, "health_check_interval", None)
    return {
        "server": f"{name} {version} ({mode})",
        "round_trip_ms": _median_ms(client.ping),
        "round_trip_probe": "PING",
        "heartbeat": (f"health check every {interval:g} s" if interval
                      else "no health check (Redis has no heartbeat)"),
        "tls": _tls_state(sock),
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _probe_amqp(conn: Any) -> dict[str, Any]:
    raw = conn.connection
    props = raw.server_properties or {}
    product = _text(props.get("product", "AMQP broker"))
    version = _text(props.get("version", "?"))
    platform = props.get("platform")
    channel = conn.default_channel
    negotiated = raw.heartbeat or 0
    proposed = raw.server_heartbeat or 0
    if negotiated:
        heartbeat = f"{negotiated:g} s (the server proposed {proposed:g} s)"
    else:
        heartbeat = f"off (none requested; the server proposes {proposed:g} s: use --heartbeat)"
    transport = getattr(raw, "transport", None)
    return {
        "server": f"{product} {version}" + (f" on {_text(platform)}" if platform else ""),
        "round_trip_ms": _median_ms(
            lambda: channel.exchange_declare(exchange="amq.direct", type="direct", passive=True)),
        "round_trip_probe": "passive declare of amq.direct",
        "heartbeat": heartbeat,
        "tls": _tls_state(getattr(transport, "sock", None)),
    }


def _probe_generic(conn: Any) -> dict[str, Any]:
    transport = conn.transport
    # Opening a channel is the one operation every transport has.
    start = time.perf_counter()
    channel = conn.channel()
    channel_ms = elapsed_ms(start)
    channel.close()
    return {
        "server": f"{transport.driver_name} {transport.driver_version()}",
        "round_trip_ms": channel_ms,
        "round_trip_probe": "open a channel",
        "heartbeat": "not used by this transport",
        "tls": {"enabled": False},
    }


PROBES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "redis": _probe_redis,
    "amqp": _probe_amqp,
}


def _origin(conn: Any) -> dict[str, Any]:
    from kombu.transport import registry

    cls = type(conn.transport)
    name = conn.transport_cls if isinstance(conn.transport_cls, str) else cls.__name__
    reg = registry.registration(name) if isinstance(name, str) else None
    return {
        "name": name,
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "distribution": reg.dist if reg is not None else None,
        "version": reg.version if reg is not None else None,
    }


def probe(url: str, timeout: float, heartbeat: float = 0) -> dict[str, Any]:
    """Connect to ``url`` and return what ``kombu check`` reports (raises on failure)."""
    conn = open_connection(url, timeout, heartbeat=heartbeat)
    try:
        connect_ms: float = conn.cli_connect_ms  # type: ignore[attr-defined]
        driver = getattr(conn.transport, "driver_type", "")
        with deadline(timeout + 2, f"from {display_url(url)} while probing the server"):
            found = PROBES.get(driver, _probe_generic)(conn)
        return {"url": display_url(url), "ok": True, "transport": _origin(conn),
                "connect_ms": connect_ms, **found}
    finally:
        conn.release()


def _tls_text(tls: dict[str, Any]) -> str:
    if not tls.get("enabled"):
        return "off"
    checked = "certificate verified" if tls.get("verified") else "certificate NOT verified"
    return f"{tls.get('version')}, {tls.get('cipher')}, {checked}"


def run(args: argparse.Namespace) -> int:
    report = probe(args.url, args.timeout, args.heartbeat)
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    origin = report["transport"]
    dist = (f", {origin['distribution']} {origin['version'] or ''}".rstrip()
            if origin["distribution"] else "")
    rows = [
        ("url", report["url"]),
        ("transport", f"{origin['name']} ({origin['class']}{dist})"),
        ("server", report["server"]),
        ("connect", f"{report['connect_ms']:.1f} ms"),
        ("round trip", f"{report['round_trip_ms']:.2f} ms ({report['round_trip_probe']}, "
                       f"median of {ROUND_TRIPS})" if report["round_trip_probe"] != "open a channel"
                       else f"{report['round_trip_ms']:.2f} ms (open a channel)"),
        ("heartbeat", report["heartbeat"]),
        ("tls", _tls_text(report["tls"])),
    ]
    for key, value in rows:
        print(f"{key:<11} {value}")
    print("ok")
    return 0
