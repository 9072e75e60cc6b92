"""kombu.matcher: the glob/pcre registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kombu import matcher
from kombu.matcher import MatcherNotInstalled, MatcherRegistry, match, register, registry, unregister


@pytest.fixture
def custom() -> Iterator[str]:
    name = "celerymods-suffix"
    register(name, lambda data, pattern, **kw: data.endswith(pattern))
    yield name
    if name in registry._matchers:
        unregister(name)


def test_glob_is_the_default() -> None:
    assert match("worker1@host", "worker*@host") is True
    assert match("worker1@host", "beat*") is False
    assert match("worker1@host", "worker?@host", "glob") is True


def test_bytes_are_decoded() -> None:
    assert match(b"celery@a", b"celery@*") is True
    assert match(b"celery@a", "^celery@a$", matcher="pcre") is True


def test_pcre_matches_from_the_start() -> None:
    assert match("celery@worker1", r"celery@worker\d", "pcre") is True
    assert match("x-celery@worker1", r"celery@", "pcre") is False
    assert match("celery@worker1", r".*worker", "pcre") is True


def test_matcher_kwargs_are_passed() -> None:
    import re

    assert match("CELERY@x", "celery@.*", "pcre") is False
    assert match("CELERY@x", "celery@.*", "pcre", {"flags": re.IGNORECASE}) is True


def test_unknown_matcher_raises_with_help() -> None:
    with pytest.raises(MatcherNotInstalled, match="No matcher installed for nope") as info:
        match("a", "a", "nope")
    assert "glob" in str(info.value) and "register" in str(info.value)
    assert registry.MatcherNotInstalled is MatcherNotInstalled


def test_register_unregister(custom: str) -> None:
    assert match("celery@host", "@host", custom) is True
    assert match("celery@host", "@other", custom) is False
    unregister(custom)
    with pytest.raises(MatcherNotInstalled):
        match("celery@host", "@host", custom)
    with pytest.raises(MatcherNotInstalled, match=custom):
        unregister(custom)


def test_register_rejects_non_callable() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        register("celerymods-bad", "not a function")  # type: ignore[arg-type]


def test_own_registry_and_default() -> None:
    reg = MatcherRegistry()
    seen: list[tuple[Any, ...]] = []

    def exact(data: str, pattern: str) -> bool:
        seen.append((data, pattern))
        return data == pattern

    reg.register("exact", exact)
    assert reg.match("a", "a", "exact") is True
    assert seen == [("a", "a")]
    reg._set_default_matcher("exact")
    assert reg.match("b", "b") is True
    with pytest.raises(MatcherNotInstalled):
        reg._set_default_matcher("missing")


def test_module_functions_are_the_registry() -> None:
    assert matcher.match == registry.match
    assert matcher.register == registry.register
    assert matcher.unregister == registry.unregister
    assert {"glob", "pcre"} <= set(registry._matchers)
