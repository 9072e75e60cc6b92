"""kombu.utils.url: parsing, building and sanitizing broker URLs."""

from __future__ import annotations

import ssl
import string
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu.utils.url import (
    as_url,
    mask_password,
    maybe_sanitize_url,
    parse_ssl_cert_reqs,
    parse_url,
    sanitize_url,
    url_to_parts,
    urlparts,
)


# -- parse_url ----------------------------------------------------------------
def test_parse_redis_url() -> None:
    assert parse_url("redis://user:pass@localhost:6379/1") == {
        "transport": "redis", "hostname": "localhost", "port": 6379,
        "userid": "user", "password": "pass", "virtual_host": "1",
    }


def test_parse_amqp_url_keeps_the_scheme_as_transport() -> None:
    # kombu returns the scheme; 'amqp' resolves to py-amqp when connecting.
    assert parse_url("amqp://guest:guest@localhost:5672//") == {
        "transport": "amqp", "hostname": "localhost", "port": 5672,
        "userid": "guest", "password": "guest", "virtual_host": "/",
    }


@pytest.mark.parametrize(("url", "vhost"), [
    ("amqp://h//", "/"),
    ("amqp://h/%2F", "/"),
    ("amqp://h/", None),
    ("amqp://h", None),
    ("amqp://h/vhost", "vhost"),
    ("amqp://h//vhost", "/vhost"),
    ("amqp://h/a%20b%3Fc", "a b?c"),
    ("redis://h/1", "1"),
])
def test_virtual_host(url: str, vhost: str | None) -> None:
    assert parse_url(url)["virtual_host"] == vhost


def test_empty_parts_are_none() -> None:
    assert parse_url("memory://") == {
        "transport": "memory", "hostname": None, "port": None,
        "userid": None, "password": None, "virtual_host": None,
    }
    parts = parse_url("redis://:@:/")
    assert (parts["userid"], parts["password"], parts["hostname"], parts["port"]) == (
        None, None, None, None)


def test_password_only() -> None:
    parts = parse_url("redis://:secret@localhost:6379/0")
    assert parts["userid"] is None
    assert parts["password"] == "secret"


def test_percent_encoded_credentials_are_decoded() -> None:
    parts = parse_url("amqp://us%40er:p%3Aa%2Fs%40s%25@host/v%2Fh")
    assert parts["userid"] == "us@er"
    assert parts["password"] == "p:a/s@s%"
    assert parts["virtual_host"] == "v/h"


def test_raw_at_and_colon_in_password() -> None:
    # The last '@' ends the credentials and the first ':' starts the password.
    parts = parse_url("amqp://user:pa:ss@word@host//")
    assert parts["userid"] == "user"
    assert parts["password"] == "pa:ss@word"
    assert parts["hostname"] == "host"


def test_scheme_and_host_are_lower_cased() -> None:
    parts = parse_url("AMQP://User:PassWord@MyHost.Example.COM//")
    assert parts["transport"] == "amqp"
    assert parts["hostname"] == "myhost.example.com"
    assert parts["userid"] == "User"
    assert parts["password"] == "PassWord"


@pytest.mark.parametrize(("url", "host", "port"), [
    ("amqp://[::1]:5672//", "::1", 5672),
    ("amqp://[::1]//", "::1", None),
    ("amqp://u:p@[2001:DB8::1]:1/", "2001:db8::1", 1),
    ("amqp://[::ffff:127.0.0.1]:5672/", "::ffff:127.0.0.1", 5672),
    ("amqp://[fe80::1%25eth0]:5672/", "fe80::1%eth0", 5672),
    ("amqp://127.0.0.1:5672/", "127.0.0.1", 5672),
])
def test_hosts(url: str, host: str, port: int | None) -> None:
    parts = parse_url(url)
    assert (parts["hostname"], parts["port"]) == (host, port)


def test_port_bounds() -> None:
    assert parse_url("amqp://h:0/")["port"] == 0
    assert parse_url("amqp://h:65535/")["port"] == 65535
    assert parse_url("amqp://h:/")["port"] is None


def test_query_parameters_are_added() -> None:
    parts = parse_url("redis://h/0?visibility_timeout=3600&a=x%20y&a=z&empty=")
    assert parts["visibility_timeout"] == "3600"
    assert parts["a"] == "z"  # the last one wins
    assert "empty" not in parts


def test_fragment_is_ignored() -> None:
    parts = parse_url("amqp://h:1/v?x=1#frag")
    assert parts["virtual_host"] == "v"
    assert parts["x"] == "1"
    assert "frag" not in repr(parts)


def test_ssl_query_parameters_form_an_ssl_dict() -> None:
    parts = parse_url("rediss://h:6380/0?ssl_cert_reqs=required&ssl_ca_certs=%2Fetc%2Fca.pem"
                      "&ssl_check_hostname=false&socket_timeout=5")
    assert parts["ssl"] == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/etc/ca.pem",
        "ssl_check_hostname": False,
    }
    assert parts["socket_timeout"] == "5"
    assert not any(key.startswith("ssl_") for key in parts)


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("off", False),
])
def test_ssl_check_hostname(text: str, expected: bool) -> None:
    assert parse_url(f"amqps://h?ssl_check_hostname={text}")["ssl"] == {
        "ssl_check_hostname": expected}


def test_ssl_check_hostname_rejects_other_words() -> None:
    with pytest.raises(ValueError, match="ssl_check_hostname='maybe' is not a boolean"):
        parse_url("amqps://h?ssl_check_hostname=maybe")


def test_ssl_true_with_ssl_options() -> None:
    assert parse_url("amqp://h?ssl=true&ssl_keyfile=k")["ssl"] == {"ssl_keyfile": "k"}


def test_ssl_false_contradicts_ssl_options() -> None:
    with pytest.raises(ValueError, match="ssl=false and also ssl_\\* options"):
        parse_url("amqp://h?ssl=false&ssl_keyfile=k")


def test_plain_ssl_parameter_is_kept() -> None:
    assert parse_url("amqp://h?ssl=1")["ssl"] == "1"


def test_query_may_not_repeat_url_parts() -> None:
    with pytest.raises(ValueError, match="repeats hostname, password") as info:
        parse_url("amqp://u:secret@h/?hostname=x&password=y")
    assert "secret" not in str(info.value)


# -- parse_ssl_cert_reqs ------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("required", ssl.CERT_REQUIRED), ("CERT_REQUIRED", ssl.CERT_REQUIRED),
    ("optional", ssl.CERT_OPTIONAL), ("CERT_OPTIONAL", ssl.CERT_OPTIONAL),
    ("none", ssl.CERT_NONE), ("CERT_NONE", ssl.CERT_NONE), ("Required", ssl.CERT_REQUIRED),
])
def test_parse_ssl_cert_reqs(text: str, expected: int) -> None:
    assert parse_ssl_cert_reqs(text) is expected


def test_parse_ssl_cert_reqs_none_and_unknown() -> None:
    assert parse_ssl_cert_reqs(None) is None
    with pytest.raises(ValueError, match="use 'required', 'optional' or 'none'"):
        parse_ssl_cert_reqs("sometimes")


@pytest.mark.parametrize("url", [
    "amqps://h//?ssl_cert_reqs=sometimes", "rediss://h:6380/0?ssl_cert_reqs=bogus",
])
def test_bad_ssl_cert_reqs_is_the_key_error_kombu_raises(url: str) -> None:
    # kombu raises KeyError; code written for it catches that.  The message
    # still says what to write instead.
    with pytest.raises(KeyError) as info:
        parse_url(url)
    assert isinstance(info.value, ValueError)
    assert "use 'required', 'optional' or 'none'" in str(info.value)
    assert str(info.value).startswith("ssl_cert_reqs=")  # not KeyError's repr quoting


@pytest.mark.parametrize(("text", "expected"), [
    ("required", ssl.CERT_REQUIRED), ("optional", ssl.CERT_OPTIONAL), ("none", ssl.CERT_NONE),
    ("CERT_REQUIRED", ssl.CERT_REQUIRED), ("CERT_OPTIONAL", ssl.CERT_OPTIONAL),
    ("CERT_NONE", ssl.CERT_NONE),
])
@pytest.mark.parametrize("scheme", ["amqps://h//", "rediss://h:6380/0", "redis://h/1"])
def test_parse_url_every_documented_cert_reqs(scheme: str, text: str, expected: int) -> None:
    parts = parse_url(f"{scheme}?ssl_cert_reqs={text}&ssl_ca_certs=%2Fca.pem")
    assert parts["ssl"] == {"ssl_cert_reqs": expected, "ssl_ca_certs": "/ca.pem"}
    assert parts["ssl"]["ssl_cert_reqs"] is expected


# -- url_to_parts -------------------------------------------------------------
def test_url_to_parts() -> None:
    parts = url_to_parts("amqp://u:p@h:1/v?x=1")
    assert isinstance(parts, urlparts)
    assert parts == ("amqp", "h", 1, "u", "p", "v", {"x": "1"})
    assert parts.hostname == "h"
    assert parts.query == {"x": "1"}
    assert url_to_parts("memory://").query == {}


def test_url_to_parts_leaves_ssl_parameters_alone() -> None:
    assert url_to_parts("amqp://h?ssl_cert_reqs=none").query == {"ssl_cert_reqs": "none"}


# -- malformed URLs -----------------------------------------------------------
@pytest.mark.parametrize(("url", "problem"), [
    ("amqp://user:secret@host:abc//", "the port must be a number"),
    ("amqp://user:secret@host:-1//", "the port must be a number"),
    ("amqp://user:secret@host:65536//", "the port must be a number"),
    ("amqp://user:secret@host:1e3//", "the port must be a number"),
    ("amqp://user:secret@host:" + "9" * 5000 + "//", "the port must be a number"),
    ("amqp://user:secret@host:\u0661\u0662//", "the port must be a number"),
    ("amqp://user:secret@host:1:2//", "the port must be a number"),
    ("amqp:/user:secret@host//", "no '://'"),
    ("user:secret@host", "no '://'"),
    ("amqp://user:secret@[::1:5672//", r"'\[' without a closing '\]'"),
    ("amqp://user:secret@::1]:5672//", r"unbalanced '\[' or '\]'"),
    ("amqp://user:secret@h[o]st//", r"unbalanced '\[' or '\]'"),
    ("amqp://user:secret@[::1]x//", "only ':port' may follow"),
    ("amqp://user:secret@[host]//", "not an IPv6 address"),
    ("amqp://user:secret@[]//", "not an IPv6 address"),
    ("://user:secret@host//", "not a transport name|must be a transport name"),
    ("am qp://user:secret@host//", "must be a transport name"),
    ("user:secret@host/x://", "not a transport name"),
])
def test_malformed_urls_name_the_part_and_mask_the_password(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        parse_url(url)
    message = str(info.value)
    assert "secret" not in message
    assert "Invalid broker URL" in message
    assert ":**@" in message


def test_unquoted_slash_in_password_does_not_leak() -> None:
    # The '/' ends the host part early: the URL is malformed, and the
    # password must not appear in the message all the same.
    with pytest.raises(ValueError) as info:
        parse_url("amqp://user:se/cret@host:5672//")
    assert "se/cret" not in str(info.value)
    assert "cret" not in str(info.value)


# -- as_url -------------------------------------------------------------------
def test_as_url() -> None:
    assert as_url("amqp", "h", 5672, "u", "p", "/") == "amqp://u:p@h:5672//"
    assert as_url("amqp", "h") == "amqp://h/"
    assert as_url("memory") == "memory:///"
    assert as_url("redis", "h", 6379, None, "pw", "0") == "redis://:pw@h:6379/0"
    assert as_url("redis", "h", None, "u") == "redis://u@h/"


def test_as_url_quotes_credentials_and_host() -> None:
    assert as_url("amqp", "/run/redis.sock", None, "u@x", "p:/@%") == (
        "amqp://u%40x:p%3A%2F%40%25@%2Frun%2Fredis.sock/")


def test_as_url_sanitize() -> None:
    assert as_url("amqp", "h", 1, "u", "p", "v", sanitize=True) == "amqp://u:**@h:1/v"
    assert as_url("amqp", "h", 1, "u", "p", "v", sanitize=True, mask="XX") == "amqp://u:XX@h:1/v"
    assert as_url("amqp", "h", 1, "u", "p", "v", sanitize=True, mask="") == "amqp://u:@h:1/v"
    assert as_url("amqp", "h", 1, "u", None, "v", sanitize=True) == "amqp://u@h:1/v"


def test_as_url_brackets_ipv6() -> None:
    assert as_url("amqp", "::1", 5672, path="/") == "amqp://[::1]:5672//"
    assert as_url("amqp", "[::1]", 5672) == "amqp://[::1]:5672/"
    assert as_url("amqp", "fe80::1%eth0", 1) == "amqp://[fe80::1%25eth0]:1/"
    assert parse_url(as_url("amqp", "fe80::1%eth0", 1))["hostname"] == "fe80::1%eth0"


def test_as_url_query() -> None:
    assert as_url("redis", "h", query={"a": "x y", "path": "/etc/ca"}) == (
        "redis://h/?a=x%20y&path=/etc/ca")
    assert as_url("redis", "h", query="a=1") == "redis://h/?a=1"


# -- sanitize_url / maybe_sanitize_url ------------------------------------------
def test_sanitize_url() -> None:
    assert sanitize_url("amqp://guest:secret@h:5672//") == "amqp://guest:**@h:5672//"
    assert sanitize_url("redis://:secret@h:6379/0", mask="!!") == "redis://:!!@h:6379/0"
    assert sanitize_url("amqp://guest@h//") == "amqp://guest@h//"


def test_sanitize_url_drops_the_query_and_requotes_the_vhost() -> None:
    assert sanitize_url("redis://:s@h/0?password=secret") == "redis://:**@h/0"
    assert sanitize_url("amqp://u:s@h/a%20b") == "amqp://u:**@h/a%20b"


def test_maybe_sanitize_url() -> None:
    assert maybe_sanitize_url("amqp://u:secret@h//") == "amqp://u:**@h//"
    assert maybe_sanitize_url("localhost") == "localhost"
    assert maybe_sanitize_url(None) is None
    assert maybe_sanitize_url(42) == 42


def test_maybe_sanitize_url_masks_malformed_urls_instead_of_raising() -> None:
    assert maybe_sanitize_url("amqp://u:secret@h:port//") == "amqp://u:**@h:port//"
    assert maybe_sanitize_url("amqp://u:sec/ret@h:1//", mask="##") == "amqp://u:##@h:1//"


# -- properties ---------------------------------------------------------------
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_PRINTABLE = st.text(st.sampled_from(string.printable), max_size=20)
_SECRET = st.one_of(_PRINTABLE, _TEXT, st.text(st.sampled_from(":@/%#?[]&="), max_size=10))
_LABEL = st.text(st.sampled_from(string.ascii_letters + string.digits + "-_"),
                 min_size=1, max_size=12)
_HOST = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.none(),
)
_PORT = st.one_of(st.none(), st.integers(1, 65535))
# A busy machine must not fail these: they check results, not speed.
_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
_QUERY = st.dictionaries(
    st.text(st.sampled_from(string.ascii_lowercase + "_-."), min_size=1, max_size=8).filter(
        lambda k: not k.startswith("ssl") and k not in (
            "transport", "hostname", "port", "userid", "password", "virtual_host")),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10),
    max_size=3,
)


@_SETTINGS
@given(user=_SECRET, password=_SECRET, host=_HOST, port=_PORT, vhost=_SECRET, query=_QUERY)
def test_as_url_parse_url_round_trip(user: str, password: str, host: str | None,
                                     port: int | None, vhost: str, query: dict[str, str]) -> None:
    url = as_url("amqp", host, port, user, password, quote(vhost, safe="/"), query=query)
    parts = parse_url(url)
    expected = {
        "transport": "amqp",
        "hostname": host.lower() if host else None,
        "port": port,
        "userid": user or None,
        "password": password or None,
        "virtual_host": vhost or None,
        **query,
    }
    assert parts == expected


@_SETTINGS
@given(user=_SECRET, password=_SECRET.filter(bool), host=_HOST, port=_PORT, vhost=_SECRET)
def test_sanitize_never_shows_the_password(user: str, password: str, host: str | None,
                                           port: int | None, vhost: str) -> None:
    path = quote(vhost, safe="/")
    url = as_url("amqp", host, port, user, password, path)
    sanitized = sanitize_url(url)
    # The sanitized URL is the one built without ever seeing the password.
    assert sanitized == as_url("amqp", host and host.lower(), port, user, "-", path,
                               sanitize=True)
    assert parse_url(sanitized)["password"] == "**"
    assert maybe_sanitize_url(url) == sanitized


@_SETTINGS
@given(user=st.text(st.sampled_from(string.ascii_lowercase), max_size=8),
       secret=_SECRET, port=st.sampled_from(["abc", "99999", "", "1"]),
       host=st.sampled_from(["host", "[::1]", "[::1", "h]", "[zz]"]))
def test_malformed_urls_never_show_the_password(user: str, secret: str, port: str,
                                                host: str) -> None:
    # An unquoted password ("PW" + anything) in a URL that may be malformed.
    url = f"amqp://{user}:PW{secret}@{host}:{port}/vhost"
    try:
        parts = parse_url(url)
    except ValueError as exc:
        assert "PW" not in str(exc)
    else:
        assert parts["password"].startswith("PW")
    assert "PW" not in maybe_sanitize_url(url)


@pytest.mark.parametrize(("text", "password", "expected"), [
    ("[Errno 111] Connection refused on port", "o", "[Errno 111] Connection refused on port"),
    ("AUTH failed with o", "o", "AUTH failed with **"),
    ("password s3cret! rejected", "s3cret!", "password ** rejected"),
    ("x!pass y", "!pass", "x** y"),
    ("amqp://u:p%40ss@h and p@ss", "p@ss", "amqp://u:**@h and **"),
    ("nothing to hide", None, "nothing to hide"),
])
def test_mask_password_masks_whole_occurrences_only(text: str, password: str | None,
                                                    expected: str) -> None:
    assert mask_password(text, password) == expected


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("Yes", True), ("ON", True), ("false", False), ("no", False),
    ("off", False), ("1", 1), ("0", 0), ("60", 60), ("0.5", 0.5), ("fast", "fast"),
    (7, 7), (None, None),
])
def test_coerce_query_value(text: object, expected: object) -> None:
    from kombu.utils.url import coerce_query_value

    value = coerce_query_value(text)
    assert value == expected and type(value) is type(expected)


def test_connection_query_param_converts_and_names_the_bad_key() -> None:
    from kombu.utils.url import connection_query_param

    url = "amqp://u:secret@h//?heartbeat=x"
    assert connection_query_param(url, "heartbeat", "10") == 10.0
    assert connection_query_param(url, "insist", "on") is True
    assert connection_query_param(url, "ssl", "false") is False
    assert connection_query_param(url, "ssl", {"ssl_keyfile": "k"}) == {"ssl_keyfile": "k"}
    assert connection_query_param(url, "failover_strategy", "shuffle") == "shuffle"
    with pytest.raises(ValueError, match="heartbeat='x'") as info:
        connection_query_param(url, "heartbeat", "x")
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError, match="not a boolean"):
        connection_query_param(url, "insist", "maybe")
