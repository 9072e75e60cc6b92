"""The serializer registry: round trips, accept lists, insecure serializers."""

from __future__ import annotations

import datetime
import decimal
import pickle
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import serialization
from kombu.exceptions import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    SerializerNotInstalled,
)
from kombu.serialization import (
    SKIP_DECODE,
    TRUSTED_CONTENT,
    SerializerRegistry,
    disable_insecure_serializers,
    dumps,
    enable_insecure_serializers,
    loads,
    pickle_loads,
    pickle_protocol,
    prepare_accept_content,
    raw_encode,
    register,
    registry,
    unregister,
)

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is a test dependency
    yaml = None

try:
    import msgpack
except ImportError:  # pragma: no cover - msgpack is a test dependency
    msgpack = None

needs_yaml = pytest.mark.skipif(yaml is None, reason="PyYAML is not installed")
needs_msgpack = pytest.mark.skipif(msgpack is None, reason="msgpack is not installed")

PICKLE = "application/x-python-serialize"
JSON = "application/json"
YAML = "application/x-yaml"
MSGPACK = "application/x-msgpack"

PY_DATA = {"str": "héllo", "int": 3, "float": 1.5, "list": [1, "two", None], "bool": True}


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    """Undo changes tests make to the global registry."""
    state = (
        dict(registry._encoders), dict(registry._decoders), set(registry._disabled_content_types),
        dict(registry.type_to_name), dict(registry.name_to_type), registry.default_serializer,
    )
    yield
    (encoders, decoders, disabled, type_to_name, name_to_type, default) = state
    registry._encoders.clear()
    registry._encoders.update(encoders)
    registry._decoders.clear()
    registry._decoders.update(decoders)
    registry._disabled_content_types.clear()
    registry._disabled_content_types.update(disabled)
    registry.type_to_name.clear()
    registry.type_to_name.update(type_to_name)
    registry.name_to_type.clear()
    registry.name_to_type.update(name_to_type)
    registry._set_default_serializer(default)


class TestDumps:
    def test_default_is_json(self) -> None:
        assert registry.default_serializer == "json"
        assert dumps({"a": 1}) == (JSON, "utf-8", '{"a": 1}')

    def test_bytes_pass_through_as_binary(self) -> None:
        assert dumps(b"\x00\xff") == ("application/data", "binary", b"\x00\xff")

    def test_text_is_sent_as_utf8_plain_text(self) -> None:
        assert dumps("héllo") == ("text/plain", "utf-8", "héllo".encode())

    def test_explicit_serializer_applies_to_text(self) -> None:
        assert dumps("x", serializer="json") == (JSON, "utf-8", '"x"')

    def test_raw(self) -> None:
        assert dumps(b"ab", serializer="raw") == ("application/data", "binary", b"ab")
        assert dumps("é", serializer="raw") == ("application/data", "utf-8", "é".encode())
        assert raw_encode(b"x") == ("application/data", "binary", b"x")

    def test_unknown_serializer(self) -> None:
        with pytest.raises(SerializerNotInstalled, match="No encoder installed for nope.*json"):
            dumps({}, serializer="nope")

    def test_encode_error_is_chained(self) -> None:
        with pytest.raises(EncodeError, match="Cannot serialize object as application/json") as info:
            dumps(object())
        assert isinstance(info.value.__cause__, TypeError)

    def test_lone_surrogate_text_raises_encode_error(self) -> None:
        with pytest.raises(EncodeError):
            dumps("\ud800")

    def test_json_circular_reference_is_an_encode_error(self) -> None:
        data: dict[str, Any] = {}
        data["self"] = data
        with pytest.raises(EncodeError, match="Circular reference"):
            dumps(data)


class TestRoundTrips:
    def roundtrip(self, data: Any, serializer: str, accept: Any) -> Any:
        content_type, encoding, payload = dumps(data, serializer=serializer)
        return loads(payload, content_type, encoding, accept=accept)

    def test_json(self) -> None:
        assert self.roundtrip(PY_DATA, "json", {JSON}) == PY_DATA

    def test_json_from_bytes_and_memoryview(self) -> None:
        payload = dumps(PY_DATA)[2].encode()
        assert loads(payload, JSON, "utf-8") == PY_DATA
        assert loads(memoryview(payload), JSON, "utf-8") == PY_DATA
        assert loads(bytearray(payload), JSON, "utf-8") == PY_DATA

    def test_json_custom_types(self) -> None:
        data = {
            "when": datetime.datetime(2024, 5, 6, 7, 8, 9, 10),
            "day": datetime.date(2024, 5, 6),
            "at": datetime.time(7, 8, 9),
            "money": decimal.Decimal("1.10"),
            "id": uuid.UUID("12345678123456781234567812345678"),
            "raw": b"\xff\x00",
            "text": b"abc",
        }
        assert self.roundtrip(data, "json", ["json"]) == data

    def test_pickle(self) -> None:
        data = {"set": {1, 2}, "tuple": (1, 2), **PY_DATA}
        assert self.roundtrip(data, "pickle", {PICKLE}) == data
        content_type, encoding, payload = dumps(data, serializer="pickle")
        assert (content_type, encoding) == (PICKLE, "binary")
        assert payload[1] == pickle_protocol  # PROTO opcode argument

    def test_pickle_from_text(self) -> None:
        payload = pickle.dumps("x", protocol=0).decode("latin-1")
        assert serialization.unpickle(payload.encode("latin-1")) == "x"
        assert pickle_loads(memoryview(pickle.dumps([1]))) == [1]

    @needs_yaml
    def test_yaml(self) -> None:
        content_type, encoding, payload = dumps(PY_DATA, serializer="yaml")
        assert (content_type, encoding) == (YAML, "utf-8")
        assert yaml.safe_load(payload) == PY_DATA
        assert loads(payload, content_type, encoding, accept=["yaml"]) == PY_DATA

    @needs_yaml
    def test_yaml_uses_the_safe_loader(self) -> None:
        evil = "!!python/object/apply:os.system ['true']"
        with pytest.raises(DecodeError) as info:
            loads(evil, YAML, "utf-8", accept={YAML})
        assert isinstance(info.value.__cause__, yaml.YAMLError)

    @needs_msgpack
    def test_msgpack(self) -> None:
        data = {"bytes": b"\x00\x01", **PY_DATA}
        content_type, encoding, payload = dumps(data, serializer="msgpack")
        assert (content_type, encoding) == (MSGPACK, "binary")
        assert msgpack.unpackb(payload, raw=False) == data
        assert loads(payload, content_type, encoding, accept={MSGPACK}) == data

    def test_missing_optional_library(self, monkeypatch: pytest.MonkeyPatch) -> None:
        serialization.register_yaml()  # a fresh lazy codec that has not imported yet
        monkeypatch.setitem(sys.modules, "yaml", None)
        with pytest.raises(SerializerNotInstalled, match="pip install PyYAML"):
            dumps({}, serializer="yaml")
        with pytest.raises(SerializerNotInstalled, match="pip install PyYAML"):
            loads(b"a: 1", YAML, "utf-8", accept={YAML})


class TestLoads:
    def test_malformed_json_raises_decode_error(self) -> None:
        with pytest.raises(DecodeError, match="Cannot deserialize application/json") as info:
            loads(b'{"a": ', JSON, "utf-8")
        assert isinstance(info.value.__cause__, ValueError)

    def test_json_with_trailing_data_is_malformed(self) -> None:
        with pytest.raises(DecodeError):
            loads('{"a": 1} x', JSON, "utf-8")

    def test_json_with_surrounding_whitespace(self) -> None:
        assert loads(' {"a": 1}\n', JSON, "utf-8") == {"a": 1}

    def test_invalid_utf8_raises_decode_error(self) -> None:
        with pytest.raises(DecodeError):
            loads(b'"\xff"', JSON, "utf-8")

    def test_content_type_as_bytes(self) -> None:
        assert loads(b"[1]", JSON.encode(), "utf-8", accept={JSON}) == [1]

    def test_empty_body_is_returned_as_is(self) -> None:
        assert loads(b"", JSON, "utf-8") == b""

    def test_no_content_type_is_application_data(self) -> None:
        assert loads(b"\xff", None, "binary", accept={JSON}) == b"\xff"

    def test_text_without_decoder_is_decoded_with_its_encoding(self) -> None:
        assert loads("é".encode("latin-1"), "text/plain", "latin-1") == "é"
        assert loads("é".encode(), "text/plain", None) == "é"
        assert loads(b"ab", "application/data", "UTF-8") == "ab"

    def test_binary_without_decoder_stays_bytes(self) -> None:
        for encoding in SKIP_DECODE:
            assert loads(b"\xff", "application/data", encoding) == b"\xff"

    def test_bad_text_encoding_raises_decode_error(self) -> None:
        with pytest.raises(DecodeError, match="as utf-8"):
            loads(b"\xff", "text/plain", "utf-8")

    def test_text_body_without_decoder_is_returned(self) -> None:
        assert loads("abc", "text/plain", "utf-8") == "abc"


class TestAccept:
    def test_accept_by_content_type(self) -> None:
        assert loads(b"[1]", JSON, "utf-8", accept={JSON}) == [1]

    def test_accept_by_name(self) -> None:
        assert loads(b"[1]", JSON, "utf-8", accept=["json"]) == [1]

    def test_disallowed_names_type_and_accepted(self) -> None:
        payload = pickle.dumps(1)
        with pytest.raises(ContentDisallowed) as info:
            loads(payload, PICKLE, "binary", accept={JSON})
        message = str(info.value)
        assert "untrusted content of type pickle (application/x-python-serialize)" in message
        assert "accepts json (application/json)" in message
        assert "'pickle'" in message

    def test_empty_accept_refuses_everything_but_trusted(self) -> None:
        with pytest.raises(ContentDisallowed, match="accepts nothing"):
            loads(b"[1]", JSON, "utf-8", accept=set())
        for content_type in TRUSTED_CONTENT:
            assert loads(b"ab", content_type, "binary", accept=set()) == b"ab"

    def test_unknown_content_type_is_named(self) -> None:
        with pytest.raises(ContentDisallowed, match="of type application/x-foo:"):
            loads(b"x", "application/x-foo", "binary", accept=["json"])

    def test_prepare_accept_content(self) -> None:
        assert prepare_accept_content(None) is None
        assert prepare_accept_content(["json", "application/x-foo", "pickle"]) == {
            JSON, "application/x-foo", PICKLE,
        }
        assert prepare_accept_content(["x"], {"x": "application/x"}) == {"application/x"}

    def test_prepare_accept_content_unknown_name(self) -> None:
        with pytest.raises(SerializerNotInstalled, match="No encoder/decoder installed for bogus"):
            prepare_accept_content(["json", "bogus"])


class TestInsecureSerializers:
    def test_pickle_refused_with_accept_none(self) -> None:
        payload = pickle.dumps({"a": 1})
        with pytest.raises(ContentDisallowed) as info:
            loads(payload, PICKLE, "binary")
        assert "disabled content of type pickle" in str(info.value)
        assert "accept=['pickle']" in str(info.value)

    def test_yaml_and_msgpack_refused_with_accept_none(self) -> None:
        with pytest.raises(ContentDisallowed):
            loads(b"a: 1", YAML, "utf-8")
        with pytest.raises(ContentDisallowed):
            loads(b"\x80", MSGPACK, "binary")

    def test_json_and_raw_allowed_with_accept_none(self) -> None:
        assert loads(b"[1]", JSON, "utf-8") == [1]
        assert loads(b"\x00", "application/data", "binary") == b"\x00"

    def test_pickle_allowed_when_listed(self) -> None:
        assert loads(pickle.dumps(5), PICKLE, "binary", accept=["pickle"]) == 5

    def test_force_skips_the_disabled_check(self) -> None:
        assert loads(pickle.dumps(5), PICKLE, "binary", force=True) == 5

    def test_enable_then_disable(self) -> None:
        payload = pickle.dumps([1])
        enable_insecure_serializers()
        assert loads(payload, PICKLE, "binary") == [1]
        if yaml is not None:
            assert loads(b"a: 1", YAML, "utf-8") == {"a": 1}
        disable_insecure_serializers()
        with pytest.raises(ContentDisallowed):
            loads(payload, PICKLE, "binary")
        assert loads(b"[1]", JSON, "utf-8") == [1]

    def test_enable_selected_by_name_or_content_type(self) -> None:
        enable_insecure_serializers(["pickle", "unknown-is-ignored"])
        assert loads(pickle.dumps(1), PICKLE, "binary") == 1
        with pytest.raises(ContentDisallowed):
            loads(b"a: 1", YAML, "utf-8")
        disable_insecure_serializers()
        enable_insecure_serializers([YAML])
        with pytest.raises(ContentDisallowed):
            loads(pickle.dumps(1), PICKLE, "binary")

    def test_enable_none_changes_nothing(self) -> None:
        enable_insecure_serializers(None)
        with pytest.raises(ContentDisallowed):
            loads(pickle.dumps(1), PICKLE, "binary")

    def test_disable_with_allowed_list(self) -> None:
        disable_insecure_serializers(allowed=["pickle"])
        assert loads(pickle.dumps(1), PICKLE, "binary") == 1
        with pytest.raises(ContentDisallowed, match="disabled content of type json"):
            loads(b"[1]", JSON, "utf-8")

    def test_disable_everything(self) -> None:
        disable_insecure_serializers(allowed=None)
        with pytest.raises(ContentDisallowed):
            loads(b"[1]", JSON, "utf-8")

    def test_accept_list_overrides_disabled_state(self) -> None:
        disable_insecure_serializers(allowed=None)
        assert loads(b"[1]", JSON, "utf-8", accept={JSON}) == [1]

    def test_registry_enable_unknown_name(self) -> None:
        with pytest.raises(KeyError, match="No serializer named 'nope'"):
            registry.enable("nope")


class TestRegister:
    def test_register_and_unregister(self) -> None:
        register("upper", lambda s: s.upper(), lambda s: s.lower(), "application/x-upper",
                 "utf-8")
        assert registry.name_to_type["upper"] == "application/x-upper"
        assert registry.type_to_name["application/x-upper"] == "upper"
        content_type, encoding, payload = dumps("abc", serializer="upper")
        assert (content_type, encoding, payload) == ("application/x-upper", "utf-8", "ABC")
        # Registered after import: enabled for accept=None consumers.
        assert loads(payload, content_type, encoding) == "abc"
        assert loads(payload, content_type, encoding, accept=["upper"]) == "abc"
        unregister("upper")
        assert "upper" not in registry.name_to_type
        with pytest.raises(SerializerNotInstalled):
            dumps("abc", serializer="upper")
        # Without a decoder the payload is only decoded as text.
        assert loads(b"ABC", "application/x-upper", "utf-8") == "ABC"

    def test_unregister_unknown(self) -> None:
        with pytest.raises(SerializerNotInstalled, match="No encoder/decoder installed for nope"):
            unregister("nope")

    def test_unregister_nonexisting_is_serializer_not_installed(self) -> None:
        # kombu's own tests catch SerializerNotInstalled here; it must not be
        # a bare KeyError that only looks like one.
        with pytest.raises(SerializerNotInstalled, match="nonexisting"):
            unregister("nonexisting")

    def test_prepare_accept_content_unknown_name(self) -> None:
        with pytest.raises(SerializerNotInstalled, match="bad_serializer"):
            prepare_accept_content(["bad_serializer"])

    def test_prepare_accept_content_unknown_name_with_odd_names_registered(self) -> None:
        # A mapping holding a None name (a serializer registered without a
        # name) still gives SerializerNotInstalled, not a TypeError from
        # sorting the names for the message.
        names = {"json": "application/json", None: "application/x-none"}
        with pytest.raises(SerializerNotInstalled, match="None, json"):
            prepare_accept_content(["bad_serializer"], names)  # type: ignore[arg-type]

    def test_decoder_only(self) -> None:
        register("rev", None, lambda s: s[::-1], "application/x-rev")
        assert loads("abc", "application/x-rev", "utf-8") == "cba"
        with pytest.raises(SerializerNotInstalled):
            dumps("abc", serializer="rev")

    def test_decoder_serializer_not_installed_is_not_wrapped(self) -> None:
        def refuse(data: Any) -> Any:
            raise SerializerNotInstalled("missing library")

        register("refuse", refuse, refuse, "application/x-refuse")
        with pytest.raises(SerializerNotInstalled, match="missing library"):
            loads(b"x", "application/x-refuse", "binary")
        with pytest.raises(SerializerNotInstalled, match="missing library"):
            dumps(1, serializer="refuse")

    def test_set_default_serializer(self) -> None:
        registry._set_default_serializer("pickle")
        assert registry.default_serializer == "pickle"
        assert dumps([1])[0] == PICKLE
        registry.default_serializer = "json"
        assert dumps([1])[0] == JSON
        with pytest.raises(SerializerNotInstalled):
            registry._set_default_serializer("nope")

    def test_reregistering_the_default_replaces_it(self) -> None:
        register("json", lambda d: "custom", lambda s: s, JSON)
        assert dumps({"a": 1}) == (JSON, "utf-8", "custom")

    def test_unregistering_the_default(self) -> None:
        unregister("json")
        assert registry.default_serializer is None
        with pytest.raises(SerializerNotInstalled, match="No default serializer"):
            dumps({"a": 1})

    def test_separate_registry(self) -> None:
        reg = SerializerRegistry()
        reg.register("id", lambda d: d, lambda d: d, "application/x-id", "binary")
        reg._set_default_serializer("id")
        assert reg.dumps([1]) == ("application/x-id", "binary", [1])
        assert reg.loads(b"x", "application/x-id", "binary", accept={"application/x-id"}) == b"x"
        assert "id" not in registry.name_to_type


class TestEntryPoints:
    @pytest.fixture
    def fake_entry_points(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        loaded: list[str] = []

        class EntryPoint:
            def __init__(self, name: str, value: Any) -> None:
                self.name, self.value, self._value = name, f"tests:{name}", value

            def load(self) -> Any:
                loaded.append(self.name)
                if isinstance(self._value, Exception):
                    raise self._value
                return self._value

        eps = [
            EntryPoint("broken", ImportError("no such module")),
            EntryPoint("ep", (lambda d: f"<{d}>", lambda s: s.strip("<>"), "application/x-ep",
                              "utf-8")),
        ]
        from kombu.utils import compat

        def iter_entry_points(group: str) -> list[EntryPoint]:
            assert group == "kombu.serializers"
            return eps

        monkeypatch.setattr(compat, "iter_entry_points", iter_entry_points)
        monkeypatch.setattr(registry, "_entrypoints_loaded", False)
        return loaded

    def test_loaded_once_on_first_unknown_name(self, fake_entry_points: list[str],
                                               caplog: pytest.LogCaptureFixture) -> None:
        dumps({})
        assert fake_entry_points == []
        assert dumps("x", serializer="ep") == ("application/x-ep", "utf-8", "<x>")
        assert fake_entry_points == ["broken", "ep"]
        assert "Cannot load serializer 'broken'" in caplog.text
        with pytest.raises(SerializerNotInstalled):
            dumps("x", serializer="other")
        assert fake_entry_points == ["broken", "ep"]

    def test_loaded_for_accept_names(self, fake_entry_points: list[str]) -> None:
        assert prepare_accept_content(["ep"]) == {"application/x-ep"}

    def test_loaded_for_unknown_content_type(self, fake_entry_points: list[str]) -> None:
        assert loads("<x>", "application/x-ep", "utf-8") == "x"

    def test_not_loaded_for_raw_content(self, fake_entry_points: list[str]) -> None:
        loads(b"x", "text/plain", "utf-8")
        loads(b"x", "application/data", "binary")
        assert fake_entry_points == []
