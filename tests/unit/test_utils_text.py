"""kombu.utils.text."""

from __future__ import annotations

import re

import pytest
from kombu import version_info_t
from kombu.utils.text import (
    escape_regex,
    fmatch_best,
    fmatch_iter,
    pluralize,
    version_string_as_tuple,
)


def test_escape_regex() -> None:
    text = "a.b*c(d)\0"
    assert re.fullmatch(escape_regex(text), text)
    assert escape_regex("a.b") == "a\\.b"
    assert escape_regex("a.b", white=".") == "a.b"
    assert escape_regex("\0") == "\\000"


def test_fmatch() -> None:
    haystack = ["redis", "rediss", "amqp", "memory"]
    assert fmatch_best("rediz", haystack) == "redis"
    assert fmatch_best("xyz", haystack) is None
    assert [key for _, key in fmatch_iter("amqq", haystack)] == ["amqp"]
    assert fmatch_best("mem", ["memory", "xx"], min_ratio=0.5) == "memory"


@pytest.mark.parametrize(("text", "expected"), [
    ("5", (5, 0, 0, "", "")),
    ("5.3", (5, 3, 0, "", "")),
    ("5.3.1", (5, 3, 1, "", "")),
    ("5.3.0rc1", (5, 3, 0, "rc1", "")),
    ("5.3.0rc1-40", (5, 3, 0, "rc1", "40")),
    ("5.3.0.dev1", (5, 3, 0, "dev1", "")),
    ("5.3.0.b1.x", (5, 3, 0, "b1", "x")),
])
def test_version_string_as_tuple(text: str, expected: tuple[object, ...]) -> None:
    result = version_string_as_tuple(text)
    assert isinstance(result, version_info_t)
    assert tuple(result) == expected


def test_version_string_invalid() -> None:
    with pytest.raises(ValueError):
        version_string_as_tuple("a.b")
    with pytest.raises(ValueError):
        version_string_as_tuple("1.2.3.4.5.6")


def test_pluralize() -> None:
    assert pluralize(1, "message") == "message"
    assert pluralize(0, "message") == "messages"
    assert pluralize(2, "box", "es") == "boxes"
