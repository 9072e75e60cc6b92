"""JSON with kombu's envelopes for non-JSON types.

Values JSON cannot express travel as ``{"__type__": marker, "__value__":
encoded}``, the wire format of kombu 5.3+, so messages interoperate with
kombu in both directions:

=================  ==============  ==============================
type               ``__type__``    ``__value__``
=================  ==============  ==============================
datetime           ``datetime``    ``isoformat()``
date               ``date``        ``isoformat()``
time               ``time``        ``isoformat()``
Decimal            ``decimal``     ``str(value)``
UUID               ``uuid``        ``{"hex": ..., "version": ...}``
bytes (UTF-8)      ``bytes``       the decoded text
bytes (other)      ``base64``      base64 text
=================  ==============  ==============================

Objects with a ``__json__()`` method are encoded as its result, and
:func:`register_type` adds types.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

__all__ = ("JSONEncoder", "dumps", "loads", "object_hook", "register_type")

T = TypeVar("T")
EncodedT = TypeVar("EncodedT")
EncoderT = Callable[[Any], Any]
DecoderT = Callable[[Any], Any]

_encoders: dict[type, tuple[str | None, EncoderT]] = {}
_decoders: dict[str, DecoderT] = {
    "bytes": lambda o: o.encode("utf-8"),
    "base64": lambda o: base64.b64decode(o.encode("utf-8")),
}


def _as(marker: str, value: Any) -> dict[str, Any]:
    return {"__type__": marker, "__value__": value}


def _lazy_text_types() -> tuple[type, ...]:
    # Django's lazy translation strings encode as text.  Django is looked up
    # only if the application already imported it, never imported here.
    module = sys.modules.get("django.utils.functional")
    promise = getattr(module, "Promise", None)
    return (promise,) if isinstance(promise, type) else ()


class JSONEncoder(json.JSONEncoder):
    """A :class:`json.JSONEncoder` that writes kombu's type envelopes."""

    def default(self, o: Any) -> Any:
        reducer = getattr(o, "__json__", None)
        if reducer is not None:
            return reducer()
        for t, (marker, encoder) in _encoders.items():
            if isinstance(o, t):
                return encoder(o) if marker is None else _as(marker, encoder(o))
        if isinstance(o, bytes):
            try:
                return _as("bytes", o.decode("utf-8"))
            except UnicodeDecodeError:
                return _as("base64", base64.b64encode(o).decode("utf-8"))
        text_types = _lazy_text_types()
        if text_types and isinstance(o, text_types):
            return str(o)
        return super().default(o)


def object_hook(o: dict[str, Any]) -> Any:
    """Turn a type envelope back into its value; return other dicts unchanged."""
    if len(o) == 2 and "__type__" in o and "__value__" in o:
        decoder = _decoders.get(o["__type__"])
        if decoder is None:
            raise ValueError(
                f"Unsupported JSON type envelope {o['__type__']!r}: register it with "
                "kombu.utils.json.register_type()"
            )
        return decoder(o["__value__"])
    return o


_object_hook = object_hook

_default_encoder = JSONEncoder()


def _make_fast_encode() -> Callable[[Any], str] | None:
    """Return a reusable C encoder with :func:`json.dumps`'s default output.

    ``json.dumps`` builds a new C encoder on every call; reusing one (without
    the circular-reference bookkeeping) halves the cost of encoding a small
    message.  A circular structure then ends in :exc:`RecursionError`, and
    :func:`dumps` re-runs the checked encoder to report it.  Returns ``None``
    where the C accelerator is missing or behaves unexpectedly.
    """
    from json import encoder as json_encoder

    make = getattr(json_encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - no C accelerator
        return None
    try:
        iterencode = make(None, _default_encoder.default, json_encoder.encode_basestring_ascii,
                          None, ": ", ", ", False, False, True)
    except TypeError:  # pragma: no cover - a different private signature
        return None
    join = "".join

    def encode(obj: Any) -> str:
        return join(iterencode(obj, 0))

    sample = {"a": [1, 2.5, None, True, "\u00e9\n"], "b": {"c": -3}}
    if encode(sample) != json.dumps(sample, cls=JSONEncoder):  # pragma: no cover
        return None
    return encode


_fast_encode = _make_fast_encode() or _default_encoder.encode


def dumps(
    s: Any,
    _dumps: Callable[..., str] = json.dumps,
    cls: type[json.JSONEncoder] = JSONEncoder,
    default_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> str:
    """Serialize ``s`` to a JSON string (kombu's format: ``{"a": 1}``).

    Keyword arguments are passed to ``_dumps`` (:func:`json.dumps`);
    ``default_kwargs`` are defaults that ``kwargs`` override.
    """
    if _dumps is json.dumps and cls is JSONEncoder and not kwargs and not default_kwargs:
        if isinstance(s, str):
            return _default_encoder.encode(s)
        try:
            return _fast_encode(s)
        except RecursionError:
            pass  # a circular reference or a very deep structure: let json say which
    if default_kwargs:
        kwargs = {**default_kwargs, **kwargs}
    return _dumps(s, cls=cls, **kwargs)


_plain_decoder = json.JSONDecoder()
_plain_scan = _plain_decoder.scan_once  # type: ignore[attr-defined]
_plain_decode = _plain_decoder.decode
_hooked_decode = json.JSONDecoder(object_hook=object_hook).decode


def loads(
    s: str | bytes | bytearray | memoryview,
    _loads: Callable[..., Any] = json.loads,
    decode_bytes: bool = True,
    object_hook: Callable[[dict[str, Any]], Any] = object_hook,
) -> Any:
    """Deserialize JSON from text or UTF-8 bytes, decoding type envelopes."""
    if isinstance(s, memoryview):
        s = s.tobytes().decode("utf-8")
    elif isinstance(s, bytearray) or decode_bytes and isinstance(s, bytes):
        s = s.decode("utf-8")
    if _loads is not json.loads or object_hook is not _object_hook:
        return _loads(s, object_hook=object_hook)
    if isinstance(s, bytes):
        return json.loads(s, object_hook=object_hook)
    if "__type__" in s:
        return _hooked_decode(s)
    # Without envelopes no hook is needed; scanning directly skips the
    # decoder's whitespace handling, which is redone only when the document
    # does not span the whole string (or is not valid JSON at all).
    try:
        obj, end = _plain_scan(s, 0)
    except StopIteration:
        return _plain_decode(s)
    if end != len(s):
        return _plain_decode(s)
    return obj


def register_type(
    t: type[T],
    marker: str | None,
    encoder: Callable[[T], Any],
    decoder: Callable[[Any], T] = lambda d: d,
) -> None:
    """Encode instances of ``t`` as ``{"__type__": marker, "__value__": encoder(obj)}``.

    ``decoder`` turns ``__value__`` back into the object.  With
    ``marker=None`` the object is encoded as ``encoder(obj)`` with no
    envelope (and cannot be decoded back).  Types are tried in registration
    order, so register subclasses before their bases.
    """
    _encoders[t] = (marker, encoder)
    if marker is not None:
        _decoders[marker] = decoder


# datetime before date: a datetime is also a date.
register_type(datetime, "datetime", datetime.isoformat, datetime.fromisoformat)
register_type(date, "date", date.isoformat, lambda o: datetime.fromisoformat(o).date())
register_type(time, "time", time.isoformat, time.fromisoformat)
register_type(Decimal, "decimal", str, Decimal)
register_type(
    uuid.UUID,
    "uuid",
    lambda o: {"hex": o.hex, "version": o.version},
    lambda o: uuid.UUID(**o),
)


def __getattr__(name: str) -> Any:
    # ``textual_types``: kombu 5.x's tuple of classes encoded as text
    # (Django's lazy strings, when Django is loaded).
    if name == "textual_types":
        return _lazy_text_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
