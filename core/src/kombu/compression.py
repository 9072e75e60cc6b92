"""Message body compression.

Methods are registered by content type (the value of the ``compression``
message header) with aliases: ``zlib``/``gzip`` (``application/x-gzip``),
``bzip2``/``bzip`` (``application/x-bz2``), ``lzma``/``xz``
(``application/x-lzma``), and, when their libraries are installed,
``brotli`` (``application/x-brotli``), ``zstd``/``zstandard``
(``application/zstd``; :mod:`compression.zstd`, ``backports.zstd`` or
``zstandard``), ``snappy`` (``application/x-snappy``) and ``lz4``
(``application/x-lz4``, the LZ4 frame format).  Content types and aliases
are kombu's, so compressed messages interoperate with kombu.

Optional libraries are found without importing them and imported on first
use.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterable
from importlib.util import find_spec
from typing import Any

from kombu.utils.encoding import ensure_bytes

__all__ = ("compress", "decompress", "encoders", "get_decoder", "get_encoder", "register")

Codec = Callable[[bytes], bytes]

_aliases: dict[str, str] = {}
_encoders: dict[str, Codec] = {}
_decoders: dict[str, Codec] = {}


def register(
    encoder: Codec, decoder: Codec, content_type: str, aliases: Iterable[str] | None = None
) -> None:
    """Register a compression method.

    :param encoder: compresses bytes.
    :param decoder: decompresses what ``encoder`` produced.
    :param content_type: the MIME type that names the method in messages.
    :param aliases: other names for it (``compression='zlib'``).
    """
    _encoders[content_type] = encoder
    _decoders[content_type] = decoder
    if aliases:
        _aliases.update((alias, content_type) for alias in aliases)


def encoders() -> list[str]:
    """Return the content types of the registered compression methods."""
    return list(_encoders)


def _unknown(name: str) -> KeyError:
    names = ", ".join(sorted({*_aliases, *_encoders}))
    return KeyError(f"No compression method {name!r}: available methods are {names}")


def get_encoder(t: str) -> tuple[Codec, str]:
    """Return ``(compress_function, content_type)`` for a name or content type.

    :raises KeyError: the method is not registered.
    """
    t = _aliases.get(t, t)
    try:
        return _encoders[t], t
    except KeyError:
        raise _unknown(t) from None


def get_decoder(t: str) -> Codec:
    """Return the decompress function for a name or content type.

    :raises KeyError: the method is not registered.
    """
    try:
        return _decoders[_aliases.get(t, t)]
    except KeyError:
        raise _unknown(t) from None


def compress(body: bytes | str, content_type: str) -> tuple[bytes, str]:
    """Compress ``body`` (text is encoded as UTF-8); return ``(data, content_type)``."""
    encoder, content_type = get_encoder(content_type)
    return encoder(ensure_bytes(body)), content_type


def decompress(body: bytes, content_type: str) -> bytes:
    """Decompress ``body`` compressed with the method ``content_type``."""
    return get_decoder(content_type)(body)


class _LazyCodec:
    """A compress/decompress function of a module imported on first call."""

    __slots__ = ("_fn", "_make")

    def __init__(self, make: Callable[[], Codec]) -> None:
        self._make = make
        self._fn: Codec | None = None

    def __call__(self, data: bytes) -> bytes:
        fn = self._fn
        if fn is None:
            fn = self._fn = self._make()
        return fn(data)


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _register_module(
    module: str, content_type: str, aliases: Iterable[str], probe: str | None = None,
) -> None:
    """Register ``module.compress``/``module.decompress`` if ``probe`` (default:
    the top-level package of ``module``) is installed; import it on first use."""
    if _installed(probe or module.partition(".")[0]):
        def attr(name: str) -> Callable[[], Codec]:
            return lambda: getattr(importlib.import_module(module), name)

        register(_LazyCodec(attr("compress")), _LazyCodec(attr("decompress")),
                 content_type, aliases)


def _zstd_module() -> Any:
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _register_zstd() -> None:
    aliases = ("zstd", "zstandard")
    if (_installed("compression") and _installed("compression.zstd")) or _installed("backports.zstd"):
        register(_LazyCodec(lambda: _zstd_module().compress),
                 _LazyCodec(lambda: _zstd_module().decompress), "application/zstd", aliases)
    elif _installed("zstandard"):
        # zstandard's (de)compressor objects must not be shared between
        # threads, so each call makes its own, as kombu does.
        def compressor() -> Codec:
            import zstandard  # type: ignore[import-not-found,unused-ignore]

            return lambda body: zstandard.ZstdCompressor().compress(body)

        def decompressor() -> Codec:
            import zstandard  # type: ignore[import-not-found,unused-ignore]

            return lambda body: zstandard.ZstdDecompressor().decompress(body)

        register(_LazyCodec(compressor), _LazyCodec(decompressor), "application/zstd", aliases)


register(zlib.compress, zlib.decompress, "application/x-gzip", aliases=["gzip", "zlib"])
# The standard library's bz2 and lzma need their C extensions, which some
# Python builds leave out.
_register_module("bz2", "application/x-bz2", ["bzip2", "bzip"], probe="_bz2")
_register_module("lzma", "application/x-lzma", ["lzma", "xz"], probe="_lzma")
_register_module("brotli", "application/x-brotli", ["brotli"])
_register_zstd()
_register_module("snappy", "application/x-snappy", ["snappy"])
_register_module("lz4.frame", "application/x-lz4", ["lz4"])
