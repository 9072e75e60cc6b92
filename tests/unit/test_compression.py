"""Compression methods: round trips, aliases, lazily imported libraries."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import compression

BODY = b"The quick brown fox jumps over the lazy dog. " * 50


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = (dict(compression._encoders), dict(compression._decoders), dict(compression._aliases))
    yield
    for current, old in zip(
        (compression._encoders, compression._decoders, compression._aliases), saved
    ):
        current.clear()
        current.update(old)


@pytest.mark.parametrize(("alias", "content_type"), [
    ("zlib", "application/x-gzip"),
    ("gzip", "application/x-gzip"),
    ("bzip2", "application/x-bz2"),
    ("bzip", "application/x-bz2"),
    ("lzma", "application/x-lzma"),
    ("xz", "application/x-lzma"),
])
def test_round_trip_by_alias_and_content_type(alias: str, content_type: str) -> None:
    compressed, returned_type = compression.compress(BODY, alias)
    assert returned_type == content_type
    assert len(compressed) < len(BODY)
    assert compression.decompress(compressed, content_type) == BODY
    assert compression.decompress(compressed, alias) == BODY
    again, same_type = compression.compress(BODY, content_type)
    assert same_type == content_type
    assert compression.decompress(again, alias) == BODY


def test_zlib_is_kombu_compatible() -> None:
    compressed, _ = compression.compress(BODY, "zlib")
    assert zlib.decompress(compressed) == BODY


def test_text_is_compressed_as_utf8() -> None:
    compressed, content_type = compression.compress("héllo", "zlib")
    assert compression.decompress(compressed, content_type) == "héllo".encode()


def test_encoders_lists_content_types() -> None:
    names = compression.encoders()
    assert {"application/x-gzip", "application/x-bz2", "application/x-lzma"} <= set(names)


def test_get_encoder_and_decoder() -> None:
    encoder, content_type = compression.get_encoder("zlib")
    assert content_type == "application/x-gzip"
    assert compression.get_decoder("gzip")(encoder(b"abc")) == b"abc"


def test_unknown_method_lists_available() -> None:
    with pytest.raises(KeyError, match="No compression method 'nope'.*zlib"):
        compression.compress(b"x", "nope")
    with pytest.raises(KeyError, match="No compression method 'nope'"):
        compression.decompress(b"x", "nope")


def test_corrupt_data_raises_the_library_error() -> None:
    with pytest.raises(zlib.error):
        compression.decompress(b"not compressed", "zlib")


def test_register_custom_method(restore_registry: None) -> None:
    compression.register(lambda b: b[::-1], lambda b: b[::-1], "application/x-rev", ["rev"])
    assert compression.compress(b"abc", "rev") == (b"cba", "application/x-rev")
    assert compression.decompress(b"cba", "application/x-rev") == b"abc"
    assert "application/x-rev" in compression.encoders()


@pytest.mark.parametrize(("module", "alias", "content_type"), [
    ("brotli", "brotli", "application/x-brotli"),
    ("snappy", "snappy", "application/x-snappy"),
    ("lz4", "lz4", "application/x-lz4"),
])
def test_optional_methods_registered_only_when_installed(
    module: str, alias: str, content_type: str
) -> None:
    if compression._installed(module):
        compressed, returned = compression.compress(BODY, alias)
        assert returned == content_type
        assert compression.decompress(compressed, content_type) == BODY
    else:
        assert content_type not in compression.encoders()
        with pytest.raises(KeyError):
            compression.get_encoder(alias)


def test_zstd_when_available() -> None:
    if "application/zstd" not in compression.encoders():
        assert compression._zstd_module() is None and not compression._installed("zstandard")
        return
    compressed, content_type = compression.compress(BODY, "zstd")
    assert content_type == "application/zstd"
    assert compression.decompress(compressed, "zstandard") == BODY


def test_optional_library_found_but_imported_lazily(restore_registry: None,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    package = tmp_path / "fakecodec_kombu_test.py"
    package.write_text(
        "IMPORTED = True\n"
        "def compress(b): return b'Z' + b\n"
        "def decompress(b): return b[1:]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    compression._register_module("fakecodec_kombu_test", "application/x-fake", ["fake"])
    assert "fakecodec_kombu_test" not in sys.modules
    assert compression.compress(b"abc", "fake") == (b"Zabc", "application/x-fake")
    assert "fakecodec_kombu_test" in sys.modules
    assert compression.decompress(b"Zabc", "fake") == b"abc"
    monkeypatch.delitem(sys.modules, "fakecodec_kombu_test")


def test_missing_optional_library_is_not_registered(restore_registry: None) -> None:
    compression._register_module("no_such_codec_module_kombu", "application/x-none", ["none"])
    compression._register_module("bz2", "application/x-nobz", ["nobz"], probe="_no_such_ext")
    assert "application/x-none" not in compression.encoders()
    assert "application/x-nobz" not in compression.encoders()


def test_the_optional_codecs_are_tested_for_real_under_ci() -> None:
    """./dev test installs them, so CI runs the codecs above, not their absence."""
    from helpers.brokers import under_ci

    if not under_ci():
        pytest.skip("only CI guarantees the optional compression libraries")
    for content_type in ("application/x-brotli", "application/zstd", "application/x-snappy",
                         "application/x-lz4"):
        assert content_type in compression.encoders()
