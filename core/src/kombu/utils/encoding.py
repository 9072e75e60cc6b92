"""Text and bytes conversion that never raises on bad input.

Log lines and error messages are built from data of unknown origin; the
``safe_*`` helpers here turn any object into text without raising.
"""

from __future__ import annotations

import sys
from typing import IO, Any, TypeVar

__all__ = (
    "bytes_to_str",
    "default_encode",
    "default_encoding",
    "default_encoding_file",
    "ensure_bytes",
    "from_utf8",
    "get_default_encoding_file",
    "safe_repr",
    "safe_str",
    "set_default_encoding_file",
    "str_to_bytes",
)

T = TypeVar("T")

#: File whose ``encoding`` :func:`default_encoding` reports (``None``: the
#: file system encoding).
default_encoding_file: IO[Any] | None = None


def set_default_encoding_file(file: IO[Any] | None) -> None:
    """Use ``file``'s encoding as the default encoding."""
    global default_encoding_file
    default_encoding_file = file


def get_default_encoding_file() -> IO[Any] | None:
    """Return the file whose encoding is the default encoding."""
    return default_encoding_file


def default_encoding(file: IO[Any] | None = None) -> str:
    """Return the encoding of ``file`` (or the default file), else the file system's."""
    file = file or default_encoding_file
    return getattr(file, "encoding", None) or sys.getfilesystemencoding()


def str_to_bytes(s: Any) -> Any:
    """Encode ``s`` as UTF-8 if it is a :class:`str`; return anything else unchanged."""
    if isinstance(s, str):
        return s.encode()
    return s


def bytes_to_str(s: Any) -> Any:
    """Decode ``s`` from UTF-8 (replacing bad bytes) if it is :class:`bytes`.

    Anything else is returned unchanged.
    """
    if isinstance(s, bytes):
        return s.decode(errors="replace")
    return s


def ensure_bytes(s: Any) -> bytes:
    """Return ``s`` as :class:`bytes`, encoding a :class:`str` as UTF-8."""
    if isinstance(s, bytes):
        return s
    return str_to_bytes(s)  # type: ignore[no-any-return]


def from_utf8(s: T, *args: Any, **kwargs: Any) -> T:
    """Return ``s`` unchanged (kombu compatibility: text is already unicode)."""
    return s


def default_encode(obj: T) -> T:
    """Return ``obj`` unchanged (kombu compatibility)."""
    return obj


def safe_str(s: Any, errors: str = "replace") -> str:
    """Return ``s`` as text without raising.

    Bytes are decoded as UTF-8 with replacement characters; objects that are
    neither text nor bytes are rendered with :func:`safe_repr` (as kombu does).
    """
    s = bytes_to_str(s)
    if isinstance(s, str):
        return s
    return safe_repr(s, errors)


def _unrepresentable(obj: Any, exc: BaseException) -> str:
    import traceback

    stack = "".join(traceback.format_stack(limit=8))
    return f"<Unrepresentable {type(obj)!r}: {exc!r} {stack}>"


def safe_repr(o: Any, errors: str = "replace") -> str:
    """Return ``repr(o)``, or a description of the failure if ``repr`` raises."""
    try:
        return repr(o)
    except Exception as exc:  # noqa: BLE001  (must not raise)
        try:
            return str(o)
        except Exception:  # noqa: BLE001
            return _unrepresentable(o, exc)
