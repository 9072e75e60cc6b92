"""Serializers: turn message bodies into bytes/text and back.

:func:`dumps` returns ``(content_type, content_encoding, payload)`` and
:func:`loads` reverses it, choosing the decoder by content type.  ``json``
is the default; ``pickle``, ``yaml`` (PyYAML, ``safe_dump``/``safe_load``)
and ``msgpack`` are registered too, their libraries imported on first use.
Third-party serializers registered under the ``kombu.serializers``
entry-point group (value: ``(encoder, decoder, content_type,
content_encoding)``) are loaded the first time a name or content type is
not found.

Which content a consumer decodes:

* ``accept`` (names or content types) given: only those, plus the raw
  content types of :data:`TRUSTED_CONTENT`.  Anything else raises
  :exc:`~kombu.exceptions.ContentDisallowed`.
* ``accept=None``: every content type except those disabled by
  :func:`disable_insecure_serializers`, which runs at import and leaves
  only ``json`` (and serializers registered later) enabled, so ``pickle``,
  ``yaml`` and ``msgpack`` are refused.  A pickle is therefore never
  decoded unless the consumer lists it in ``accept`` or the application
  calls :func:`enable_insecure_serializers`.  This is kombu 5.x's default
  too; ``force=True`` skips the check, as in kombu.
"""

from __future__ import annotations

import codecs
import os
import pickle
from collections import namedtuple
from collections.abc import Callable, Collection, Iterable
from functools import partial
from io import BytesIO
from typing import Any

from kombu.exceptions import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    SerializerNotInstalled,
)
from kombu.log import get_logger
from kombu.utils.encoding import str_to_bytes

__all__ = (
    "SKIP_DECODE",
    "TRUSTED_CONTENT",
    "SerializerRegistry",
    "disable_insecure_serializers",
    "dumps",
    "enable_insecure_serializers",
    "loads",
    "pickle",
    "pickle_loads",
    "pickle_protocol",
    "prepare_accept_content",
    "raw_encode",
    "register",
    "register_json",
    "register_msgpack",
    "register_pickle",
    "register_yaml",
    "registry",
    "unregister",
)

logger = get_logger(__name__)

#: Content encodings whose payload is left as bytes when no decoder applies.
SKIP_DECODE = frozenset(["binary", "ascii-8bit"])
#: Raw content types every consumer accepts, whatever its ``accept`` list.
TRUSTED_CONTENT = frozenset(["application/data", "application/text"])
#: Content types that have no decoder by design (no entry-point lookup for them).
_RAW_CONTENT = TRUSTED_CONTENT | {"text/plain"}

#: Pickle protocol used by the ``pickle`` serializer (``PICKLE_PROTOCOL``
#: environment variable, default 4 as in kombu).
pickle_protocol = int(os.environ.get("PICKLE_PROTOCOL", "4"))
pickle_load = pickle.load

codec = namedtuple("codec", ("content_type", "content_encoding", "encoder"))

_NOTSET: Any = object()
#: kombu 5.x's name of the "argument not given" marker.
NOTSET = _NOTSET


def _listing(names: Iterable[Any]) -> str:
    """``names`` sorted and comma-separated, for error messages (any type of name)."""
    return ", ".join(sorted(map(str, names)))


def pickle_loads(s: bytes, load: Callable[[Any], Any] = pickle_load) -> Any:
    """Unpickle ``s`` (any bytes-like object)."""
    return load(BytesIO(s))


def parenthesize_alias(first: str | None, second: str) -> str:
    """Return ``'first (second)'``, or ``second`` when there is no ``first``."""
    return f"{first} ({second})" if first else second


class SerializerRegistry:
    """The serializers known by name (for encoding) and content type (for decoding)."""

    def __init__(self) -> None:
        self._encoders: dict[str, codec] = {}
        self._decoders: dict[str, Callable[[Any], Any]] = {}
        self._default_serializer: str | None = None
        self._default_encode: Callable[[Any], Any] | None = None
        self._default_content_type: str | None = None
        self._default_content_encoding: str | None = None
        self._disabled_content_types: set[str] = set()
        self._entrypoints_loaded = False
        self.type_to_name: dict[str, str] = {}
        self.name_to_type: dict[str, str] = {}

    def register(
        self,
        name: str,
        encoder: Callable[[Any], Any] | None,
        decoder: Callable[[Any], Any] | None,
        content_type: str,
        content_encoding: str = "utf-8",
    ) -> None:
        """Register a serializer.

        :param name: the name producers use (``serializer='json'``).
        :param encoder: turns a value into ``str``/``bytes``; ``None`` registers
            a decoder only.
        :param decoder: turns a payload back into a value; ``None`` registers
            an encoder only.
        :param content_type: the MIME type messages are tagged with.
        :param content_encoding: the character set of the encoded payload
            (``'utf-8'``, or ``'binary'`` for bytes).

        Re-registering the default serializer's name also replaces the
        default encoder (kombu keeps using the old one until
        ``_set_default_serializer`` is called again).
        """
        if encoder:
            self._encoders[name] = codec(content_type, content_encoding, encoder)
            if name == self._default_serializer:
                self._set_default_serializer(name)
        if decoder:
            self._decoders[content_type] = decoder
        self.type_to_name[content_type] = name
        self.name_to_type[name] = content_type

    def unregister(self, name: str) -> None:
        """Remove the serializer ``name`` (:exc:`SerializerNotInstalled` if unknown)."""
        try:
            content_type = self.name_to_type.pop(name)
        except KeyError:
            raise SerializerNotInstalled(
                f"No encoder/decoder installed for {name}: registered serializers "
                f"are {_listing(self.name_to_type)}"
            ) from None
        self._decoders.pop(content_type, None)
        self._encoders.pop(name, None)
        self.type_to_name.pop(content_type, None)
        if name == self._default_serializer:
            self._default_serializer = self._default_encode = None
            self._default_content_type = self._default_content_encoding = None

    def _content_type_of(self, name: str) -> str:
        if "/" in name:
            return name
        try:
            return self.name_to_type[name]
        except KeyError:
            raise KeyError(f"No serializer named {name!r}") from None

    def enable(self, name: str) -> None:
        """Let ``accept=None`` consumers decode ``name`` (a name or content type)."""
        self._disabled_content_types.discard(self._content_type_of(name))

    def disable(self, name: str) -> None:
        """Make ``accept=None`` consumers refuse ``name`` (a name or content type)."""
        self._disabled_content_types.add(self._content_type_of(name))

    @property
    def default_serializer(self) -> str | None:
        """Name of the serializer :meth:`dumps` uses when none is given."""
        return self._default_serializer

    @default_serializer.setter
    def default_serializer(self, name: str) -> None:
        self._set_default_serializer(name)

    def _set_default_serializer(self, name: str) -> None:
        """Make ``name`` the default serializer (:exc:`SerializerNotInstalled` if unknown)."""
        (self._default_content_type, self._default_content_encoding,
         self._default_encode) = self._get_codec(name)
        self._default_serializer = name

    def _get_codec(self, name: str) -> codec:
        try:
            return self._encoders[name]
        except KeyError:
            pass
        if self._load_entrypoints():
            return self._get_codec(name)
        raise SerializerNotInstalled(
            f"No encoder installed for {name}: available serializers are "
            f"{_listing(self._encoders)}"
        )

    def _load_entrypoints(self) -> bool:
        """Register the ``kombu.serializers`` entry points, once; return whether it ran."""
        if self._entrypoints_loaded:
            return False
        self._entrypoints_loaded = True
        from kombu.utils.compat import iter_entry_points

        for ep in iter_entry_points("kombu.serializers"):
            try:
                self.register(ep.name, *ep.load())
            except Exception:
                logger.warning("Cannot load serializer %r from entry point %r",
                               ep.name, ep.value, exc_info=True)
        return True

    def dumps(self, data: Any, serializer: str | None = None) -> tuple[str, str, Any]:
        """Serialize ``data``; return ``(content_type, content_encoding, payload)``.

        With no ``serializer``, :class:`bytes` are sent as they are
        (``application/data``, ``binary``), :class:`str` as UTF-8
        (``text/plain``) and anything else with the default serializer.
        ``'raw'`` sends bytes or text unchanged (see :func:`raw_encode`).

        :raises SerializerNotInstalled: ``serializer`` is not registered.
        :raises EncodeError: the encoder failed (the cause is chained).
        """
        if not serializer:
            if isinstance(data, (bytes, str)):
                if isinstance(data, bytes):
                    return "application/data", "binary", data
                try:
                    return "text/plain", "utf-8", data.encode("utf-8")
                except UnicodeError as exc:
                    raise EncodeError(f"Cannot encode text body as UTF-8: {exc}") from exc
            encoder = self._default_encode
            if encoder is None:
                raise SerializerNotInstalled(
                    "No default serializer: it was unregistered; register one and "
                    "select it with registry._set_default_serializer(name)"
                )
            content_type = self._default_content_type
            content_encoding = self._default_content_encoding
        elif serializer == "raw":
            return raw_encode(data)
        else:
            content_type, content_encoding, encoder = self._get_codec(serializer)
        try:
            return content_type, content_encoding, encoder(data)  # type: ignore[return-value]
        except SerializerNotInstalled:
            raise
        except Exception as exc:
            raise EncodeError(
                f"Cannot serialize {type(data).__name__} as {content_type}: {exc}"
            ) from exc

    def loads(
        self,
        data: Any,
        content_type: str | bytes | None,
        content_encoding: str | None,
        accept: Collection[str] | None = None,
        force: bool = False,
        _trusted_content: Collection[str] = TRUSTED_CONTENT,
    ) -> Any:
        """Deserialize ``data`` according to its ``content_type``.

        :param accept: content types (or serializer names) the consumer
            accepts; ``None`` accepts all but the disabled ones (see the
            module documentation).  Pass the result of
            :func:`prepare_accept_content` for the fastest check.
        :param force: with ``accept=None``, decode disabled content types too.
        :raises ContentDisallowed: the content type is not accepted.
        :raises DecodeError: the decoder failed (the cause is chained).

        Content types without a decoder are returned as text decoded with
        ``content_encoding``, or as the original bytes for ``binary``.
        """
        if not content_type:
            content_type = "application/data"
        elif isinstance(content_type, bytes):
            content_type = content_type.decode()
        if accept is not None:
            if (content_type not in accept and content_type not in _trusted_content
                    and self.type_to_name.get(content_type) not in accept):
                raise self._untrusted(content_type, accept)
        elif content_type in self._disabled_content_types and not force:
            raise self._disabled(content_type)
        if data:
            decode = self._decoders.get(content_type)
            if (decode is None and content_type not in _RAW_CONTENT
                    and self._load_entrypoints()):
                decode = self._decoders.get(content_type)
            if decode is not None:
                try:
                    return decode(data)
                except SerializerNotInstalled:
                    raise
                except Exception as exc:
                    raise DecodeError(
                        f"Cannot deserialize {content_type} message body: {exc}"
                    ) from exc
            content_encoding = (content_encoding or "utf-8").lower()
            if content_encoding not in SKIP_DECODE and not isinstance(data, str):
                try:
                    return codecs.decode(data, content_encoding)
                except Exception as exc:
                    raise DecodeError(
                        f"Cannot decode {content_type} message body as {content_encoding}: {exc}"
                    ) from exc
        return data

    def _alias(self, content_type: str) -> str:
        return parenthesize_alias(self.type_to_name.get(content_type), content_type)

    def _untrusted(self, content_type: str, accept: Iterable[str]) -> ContentDisallowed:
        accepted = ", ".join(sorted(
            self._alias(self.name_to_type.get(a, a)) for a in accept
        )) or "nothing"
        name = self.type_to_name.get(content_type, content_type)
        return ContentDisallowed(
            f"Refusing to deserialize untrusted content of type {self._alias(content_type)}: "
            f"the consumer accepts {accepted}; add {name!r} to its accept list to allow it"
        )

    def _disabled(self, content_type: str) -> ContentDisallowed:
        name = self.type_to_name.get(content_type, content_type)
        return ContentDisallowed(
            f"Refusing to deserialize disabled content of type {self._alias(content_type)}: "
            f"pass accept=[{name!r}] to the consumer, or call "
            f"kombu.enable_insecure_serializers([{name!r}]) if every producer is trusted"
        )


#: The global serializer registry.
registry = SerializerRegistry()
dumps = registry.dumps
loads = registry.loads
register = registry.register
unregister = registry.unregister


def raw_encode(data: Any) -> tuple[str, str, Any]:
    """Tag ``data`` as ``application/data``: text as UTF-8, anything else as binary."""
    if isinstance(data, str):
        try:
            return "application/data", "utf-8", data.encode("utf-8")
        except UnicodeError as exc:
            raise EncodeError(f"Cannot encode text body as UTF-8: {exc}") from exc
    return "application/data", "binary", data


class _Lazy:
    """A serializer function from an optional library, imported on first call."""

    __slots__ = ("_fn", "_load")

    def __init__(self, load: Callable[[], Callable[[Any], Any]]) -> None:
        self._load = load
        self._fn: Callable[[Any], Any] | None = None

    def __call__(self, data: Any) -> Any:
        fn = self._fn
        if fn is None:
            fn = self._fn = self._load()
        return fn(data)


def _import_optional(module: str, name: str, distribution: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SerializerNotInstalled(
            f"No encoder/decoder installed for {name}: install the {distribution} "
            f"library (pip install {distribution})"
        ) from None


def register_json() -> None:
    """Register the ``json`` serializer (see :mod:`kombu.utils.json`)."""
    from kombu.utils import json as _json

    registry.register("json", _json.dumps, _json.loads,
                      content_type="application/json", content_encoding="utf-8")


def register_yaml() -> None:
    """Register the ``yaml`` serializer (PyYAML's ``safe_dump``/``safe_load``)."""

    def yaml() -> Any:
        return _import_optional("yaml", "yaml", "PyYAML")

    registry.register("yaml", _Lazy(lambda: yaml().safe_dump), _Lazy(lambda: yaml().safe_load),
                      content_type="application/x-yaml", content_encoding="utf-8")


def unpickle(s: Any) -> Any:
    """Unpickle text or bytes."""
    return pickle_loads(str_to_bytes(s))


def register_pickle() -> None:
    """Register the ``pickle`` serializer (Python only; never accept it from untrusted producers)."""

    def pickle_dumps(obj: Any, dumper: Callable[..., bytes] = pickle.dumps) -> bytes:
        return dumper(obj, protocol=pickle_protocol)

    registry.register("pickle", pickle_dumps, unpickle,
                      content_type="application/x-python-serialize", content_encoding="binary")


def register_msgpack() -> None:
    """Register the ``msgpack`` serializer (the msgpack library)."""

    def msgpack() -> Any:
        return _import_optional("msgpack", "msgpack", "msgpack")

    registry.register(
        "msgpack",
        _Lazy(lambda: partial(msgpack().packb, use_bin_type=True)),
        _Lazy(lambda: partial(msgpack().unpackb, raw=False)),
        content_type="application/x-msgpack",
        content_encoding="binary",
    )


register_json()
register_pickle()
register_yaml()
register_msgpack()
registry._set_default_serializer("json")


def enable_insecure_serializers(choices: Iterable[str] | None = _NOTSET) -> None:
    """Let ``accept=None`` consumers decode ``choices`` (names or content types).

    The default enables ``pickle``, ``yaml`` and ``msgpack``.  Unknown names
    are ignored.  Do this only when every producer is trusted: unpickling
    runs arbitrary code.
    """
    choices = ["pickle", "yaml", "msgpack"] if choices is _NOTSET else choices
    for choice in choices or ():
        try:
            registry.enable(choice)
        except KeyError:
            pass


def disable_insecure_serializers(allowed: Iterable[str] | None = _NOTSET) -> None:
    """Make ``accept=None`` consumers refuse every serializer except ``allowed``.

    The default allows only ``json``.  Producers can still encode with the
    disabled serializers.  This runs at import.
    """
    allowed = ["json"] if allowed is _NOTSET else allowed
    for content_type in registry._decoders:
        registry.disable(content_type)
    for name in allowed or ():
        registry.enable(name)


disable_insecure_serializers()


def prepare_accept_content(
    content_types: Iterable[str] | None, name_to_type: dict[str, str] | None = None
) -> set[str] | None:
    """Turn an ``accept`` list of names and content types into a set of content types.

    ``None`` stays ``None``.

    :raises SerializerNotInstalled: a name is not a registered serializer.
    """
    if content_types is None:
        return None
    if not name_to_type:
        name_to_type = registry.name_to_type
    result = set()
    for name in content_types:
        if "/" in name:
            result.add(name)
            continue
        content_type = name_to_type.get(name)
        if content_type is None and registry._load_entrypoints():
            content_type = name_to_type.get(name)
        if content_type is None:
            raise SerializerNotInstalled(
                f"No encoder/decoder installed for {name}: registered serializers are "
                f"{_listing(name_to_type)}"
            )
        result.add(content_type)
    return result


#: Helpers kombu 5.x's serialization module imports, by name: their home module.
_HELPERS = {"bytes_to_str": "kombu.utils.encoding", "entrypoints": "kombu.utils.compat",
            "reraise": "kombu.exceptions"}


def __getattr__(name: str) -> Any:
    home = _HELPERS.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
