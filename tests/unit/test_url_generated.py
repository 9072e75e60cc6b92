"""Generated broker URLs: round trip, no password ever shown, same parts as kombu 5.x.

A seeded generator makes a few hundred URLs with user names and passwords
holding every character that needs quoting, IPv6 literals, ports, virtual
hosts, query options and ``;``-joined alternates.  Real kombu 5.x parses
the whole batch in one subprocess (``.venv-kombu``).
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from helpers import run_python
from helpers.kombu5 import kombu5_python
from kombu import Connection
from kombu.utils.url import as_url, maybe_sanitize_url, parse_url, sanitize_url, url_to_parts

SEED = 20240610
COUNT = 300

#: Characters that must be percent-encoded in the user or password of a URL.
SPECIAL = ":/@?#[]%;=&+ !$'()*,~\"<>\\^`{|}"
SCHEMES = ("amqp", "amqps", "pyamqp", "redis", "rediss")
HOSTS = ("localhost", "broker.example.com", "10.1.2.3", "[::1]", "[fe80::1:2]",
         "[2001:db8::42]", "rabbit-1.internal")
QUERIES = ("", "?heartbeat=10", "?connect_timeout=3", "?visibility_timeout=60",
           "?heartbeat=5&connect_timeout=2", "?ssl_cert_reqs=required",
           "?ssl_cert_reqs=CERT_NONE&ssl_ca_certs=%2Fetc%2Fca.pem", "?ssl_cert_reqs=optional",
           "?ssl_cert_reqs=CERT_REQUIRED", "?ssl_cert_reqs=none&ssl_certfile=c.pem")


def _secret(rng: random.Random, prefix: str) -> str:
    """A credential with quoting-worthy characters and a marker seen nowhere else."""
    chars = string.ascii_letters + string.digits + SPECIAL
    body = "".join(rng.choice(chars) for _ in range(rng.randint(3, 10)))
    return f"{prefix}{rng.randrange(10**6):06d}{body}"


def _one(rng: random.Random, scheme: str) -> tuple[str, str]:
    user = _secret(rng, "U") if rng.random() < 0.9 else ""
    password = _secret(rng, "Pw")
    host = rng.choice(HOSTS)
    port = f":{rng.randint(1, 65535)}" if rng.random() < 0.7 else ""
    if scheme.startswith("redis"):
        vhost = str(rng.randint(0, 15))
    else:
        vhost = rng.choice(["/", "vh", "~=10", "a/b", "v h", "x;y", "%"])
    userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    url = f"{scheme}://{userinfo}{host}{port}/{quote(vhost, safe='')}{rng.choice(QUERIES)}"
    return url, password


def generate(seed: int = SEED, count: int = COUNT) -> list[tuple[str, list[str]]]:
    """``count`` URLs (some ``;``-joined lists) with the passwords each holds."""
    rng = random.Random(seed)
    urls = []
    for _ in range(count):
        scheme = rng.choice(SCHEMES)
        parts = [_one(rng, scheme) for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 3))]
        urls.append((";".join(url for url, _ in parts), [pw for _, pw in parts]))
    return urls


URLS = generate()

#: Runs under real kombu 5.x: the parts of every URL (and of each alternate).
KOMBU5_SCRIPT = r"""
import json, sys
from kombu import Connection
from kombu.utils.url import parse_url

def parts(url):
    p = parse_url(url)
    tls = {k: int(v) if isinstance(v, int) else v for k, v in (p.get("ssl") or {}).items()}
    return [p["transport"], p["hostname"], p["port"], p["userid"], p["password"],
            p["virtual_host"], tls]

out = []
for url in json.load(open(sys.argv[1])):
    try:
        entry = {"parts": [parts(u) for u in url.split(";")]}
    except Exception as exc:
        out.append({"error": f"{type(exc).__name__}: {exc}"})
        continue
    try:
        conn = Connection(url)
    except TypeError:  # a query option kombu takes for a Connection argument
        entry["conn"] = None
    else:
        entry["conn"] = [conn.hostname, conn.port, conn.userid, conn.password,
                         conn.virtual_host]
    out.append(entry)
json.dump(out, open(sys.argv[2], "w"))
"""


def _ours(url: str) -> dict[str, Any]:
    conn = Connection(url)
    parts = []
    for alternate in url.split(";"):
        p = parse_url(alternate)
        tls = {k: int(v) if isinstance(v, int) else v for k, v in (p.get("ssl") or {}).items()}
        parts.append([p["transport"], p["hostname"], p["port"], p["userid"], p["password"],
                      p["virtual_host"], tls])
    return {"conn": [conn.hostname, conn.port, conn.userid, conn.password, conn.virtual_host],
            "parts": parts}


def test_generator_is_seeded_and_covers_the_cases() -> None:
    assert generate() == URLS
    joined = " ".join(url for url, _ in URLS)
    assert ";" in joined and "[::1]" in joined and "%40" in joined and "%3A" in joined
    assert any(len(pws) > 1 for _, pws in URLS)
    assert "ssl_cert_reqs=CERT_NONE" in joined and "ssl_cert_reqs=optional" in joined


@pytest.mark.parametrize(("url", "passwords"), URLS, ids=range(len(URLS)))
def test_round_trip_and_no_password_shown(url: str, passwords: list[str]) -> None:
    for alternate, password in zip(url.split(";"), passwords):
        parts = url_to_parts(alternate)
        assert parts.password == password
        rebuilt = as_url(parts.scheme, parts.hostname, parts.port, parts.username,
                         parts.password, quote(parts.path, safe="") if parts.path else None,
                         parts.query)
        assert url_to_parts(rebuilt) == parts
    conn = Connection(url)
    shown = [maybe_sanitize_url(url), sanitize_url(url), repr(conn), conn.as_uri(),
             repr(conn.clone()), str(conn.info().get("hostname"))]
    for text in shown:
        for password in passwords:
            assert password not in text
            assert quote(password, safe="") not in text
    assert maybe_sanitize_url(url).count(";") == url.count(";")
    assert maybe_sanitize_url(url).count(":**@") == len(passwords)


def test_same_parts_as_kombu5(tmp_path: Path) -> None:
    python = kombu5_python()
    source, result = tmp_path / "urls.json", tmp_path / "kombu5.json"
    source.write_text(json.dumps([url for url, _ in URLS]))
    run_python(KOMBU5_SCRIPT, str(source), str(result), python=python, timeout=120)
    theirs = json.loads(result.read_text())
    assert len(theirs) == len(URLS)
    mismatches = []
    connections = 0
    for (url, _), kombu5 in zip(URLS, theirs):
        assert "error" not in kombu5, (maybe_sanitize_url(url), kombu5)
        ours = _ours(url)
        if kombu5["conn"] is None:
            # kombu raised TypeError for a query option such as
            # ?visibility_timeout=60, which is a transport option here.
            ours["conn"] = None
        else:
            connections += 1
        if ours != kombu5:
            mismatches.append((maybe_sanitize_url(url), ours, kombu5))
    assert not mismatches, mismatches[:5]
    assert connections > COUNT // 2
