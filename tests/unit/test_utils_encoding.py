"""kombu.utils.encoding."""

from __future__ import annotations

import io
import sys

from kombu.utils import encoding
from kombu.utils.encoding import (
    bytes_to_str,
    default_encode,
    default_encoding,
    ensure_bytes,
    from_utf8,
    safe_repr,
    safe_str,
    str_to_bytes,
)


def test_str_to_bytes() -> None:
    assert str_to_bytes("é") == "é".encode()
    assert str_to_bytes(b"x") == b"x"
    assert str_to_bytes(5) == 5


def test_bytes_to_str() -> None:
    assert bytes_to_str("é".encode()) == "é"
    assert bytes_to_str(b"\xff") == "\ufffd"
    assert bytes_to_str("x") == "x"
    assert bytes_to_str(None) is None


def test_ensure_bytes() -> None:
    assert ensure_bytes("a") == b"a"
    data = b"b"
    assert ensure_bytes(data) is data


def test_identity_helpers() -> None:
    obj = object()
    assert from_utf8(obj) is obj
    assert default_encode(obj) is obj


def test_default_encoding() -> None:
    assert default_encoding() == (
        getattr(encoding.get_default_encoding_file(), "encoding", None)
        or sys.getfilesystemencoding()
    )
    stream = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    assert default_encoding(stream) == "latin-1"
    encoding.set_default_encoding_file(stream)
    try:
        assert encoding.get_default_encoding_file() is stream
        assert default_encoding() == "latin-1"
    finally:
        encoding.set_default_encoding_file(None)


class BadRepr:
    def __repr__(self) -> str:
        raise ValueError("repr failed")

    def __str__(self) -> str:
        return "from str"


class Hopeless:
    def __repr__(self) -> str:
        raise ValueError("repr failed")

    def __str__(self) -> str:
        raise ValueError("str failed")


def test_safe_str() -> None:
    assert safe_str("é") == "é"
    assert safe_str(b"\xffa") == "\ufffda"
    assert safe_str(5) == "5"
    assert safe_str(KeyError("k")) == "KeyError('k')"  # kombu renders non-text with repr
    assert safe_str(BadRepr()) == "from str"


def test_safe_repr() -> None:
    assert safe_repr("a") == "'a'"
    assert safe_repr(BadRepr()) == "from str"
    text = safe_repr(Hopeless())
    assert text.startswith("<Unrepresentable <class ")
    assert "repr failed" in text
