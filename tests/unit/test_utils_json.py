"""kombu.utils.json: kombu's type envelopes, exact wire shape, fast paths."""

from __future__ import annotations

import datetime
import decimal
import json as stdjson
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu.utils import json
from kombu.utils.json import JSONEncoder, dumps, loads, register_type

WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9, 10)
AWARE = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
ID = uuid.UUID("3f2b8a6e-9d1c-4e57-a1b2-0c9d8e7f6a5b")


@pytest.fixture
def restore_types() -> Iterator[None]:
    encoders, decoders = dict(json._encoders), dict(json._decoders)
    yield
    json._encoders.clear()
    json._encoders.update(encoders)
    json._decoders.clear()
    json._decoders.update(decoders)


@pytest.mark.parametrize(("value", "wire"), [
    (WHEN, {"__type__": "datetime", "__value__": "2024-05-06T07:08:09.000010"}),
    (AWARE, {"__type__": "datetime", "__value__": "2024-05-06T07:08:09+02:00"}),
    (datetime.date(2024, 5, 6), {"__type__": "date", "__value__": "2024-05-06"}),
    (datetime.time(7, 8, 9, 5), {"__type__": "time", "__value__": "07:08:09.000005"}),
    (decimal.Decimal("3.14"), {"__type__": "decimal", "__value__": "3.14"}),
    (ID, {"__type__": "uuid", "__value__": {"hex": ID.hex, "version": 4}}),
    (b"abc", {"__type__": "bytes", "__value__": "abc"}),
    (b"\xff\x00", {"__type__": "base64", "__value__": "/wA="}),
])
def test_wire_shape_and_round_trip(value: Any, wire: dict[str, Any]) -> None:
    text = dumps({"v": value})
    assert stdjson.loads(text) == {"v": wire}
    # Key order is part of the format: "__type__" comes first.
    assert text == stdjson.dumps({"v": wire})
    decoded = loads(text)["v"]
    assert decoded == value
    assert type(decoded) is type(value)


def test_datetime_is_not_encoded_as_date() -> None:
    assert '"datetime"' in dumps(WHEN)


def test_decodes_what_kombu_writes() -> None:
    kombu_wire = (
        '{"args": [{"__type__": "datetime", "__value__": "2024-05-06T07:08:09"}], '
        '"kwargs": {"id": {"__type__": "uuid", "__value__": '
        '{"hex": "3f2b8a6e9d1c4e57a1b20c9d8e7f6a5b", "version": 4}}}}'
    )
    assert loads(kombu_wire) == {
        "args": [datetime.datetime(2024, 5, 6, 7, 8, 9)], "kwargs": {"id": ID},
    }


def test_unknown_envelope_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="Unsupported JSON type envelope 'mystery'"):
        loads('{"__type__": "mystery", "__value__": 1}')


def test_dicts_with_extra_keys_are_left_alone() -> None:
    data = {"__type__": "datetime", "__value__": "x", "other": 1}
    assert loads(dumps(data)) == data


def test_output_matches_json_dumps() -> None:
    data = {"a": [1, 2.5, None, True, False], "b": "é\n\"", "c": {"d": []}, "e": 10**20}
    assert dumps(data) == stdjson.dumps(data)
    assert dumps("text") == '"text"'
    assert dumps(3) == "3"
    assert dumps(None) == "null"


def test_keyword_arguments_are_passed_to_json() -> None:
    assert dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a": 2, "b": 1}'
    assert dumps({"a": 1}, separators=(",", ":")) == '{"a":1}'
    assert dumps({"a": 1}, default_kwargs={"indent": 1}) == '{\n "a": 1\n}'
    assert dumps({"a": WHEN}, sort_keys=True) == (
        '{"a": {"__type__": "datetime", "__value__": "2024-05-06T07:08:09.000010"}}'
    )


def test_custom_dumps_function() -> None:
    seen = []

    def fake(obj: Any, **kwargs: Any) -> str:
        seen.append(kwargs["cls"])
        return "fake"

    assert dumps({}, _dumps=fake) == "fake"
    assert seen == [JSONEncoder]


def test_unserializable_raises_type_error() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"x": object()})


def test_circular_reference() -> None:
    data: list[Any] = []
    data.append(data)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(data)


def test_deep_but_finite_structure() -> None:
    data: list[Any] = []
    for _ in range(100):
        data = [data]
    assert loads(dumps(data)) == data


def test_dunder_json_reducer() -> None:
    class Point:
        def __json__(self) -> list[int]:
            return [1, 2]

    assert dumps({"p": Point()}) == '{"p": [1, 2]}'


def test_register_type(restore_types: None) -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Money) and other.cents == self.cents

    register_type(Money, "money", lambda m: m.cents, Money)
    text = dumps([Money(5)])
    assert stdjson.loads(text) == [{"__type__": "money", "__value__": 5}]
    assert loads(text) == [Money(5)]


def test_register_type_without_marker(restore_types: None) -> None:
    class Tag:
        pass

    register_type(Tag, None, lambda t: "tag")
    assert dumps({"t": Tag()}) == '{"t": "tag"}'


@pytest.mark.parametrize("payload", [b'{"a": 1}', bytearray(b'{"a": 1}'), memoryview(b'{"a": 1}'),
                                     '{"a": 1}', ' {"a": 1} '])
def test_loads_input_types(payload: Any) -> None:
    assert loads(payload) == {"a": 1}


def test_loads_without_decoding_bytes() -> None:
    assert loads(b'[{"__type__": "decimal", "__value__": "1"}]', decode_bytes=False) == [
        decimal.Decimal(1)
    ]


def test_loads_with_custom_hook() -> None:
    assert loads('{"a": 1}', object_hook=lambda d: sorted(d)) == ["a"]


def test_loads_errors() -> None:
    for bad in ("", "{", '{"a": 1} x', "[1,]"):
        with pytest.raises(ValueError):
            loads(bad)


def test_envelope_text_in_strings_is_harmless() -> None:
    data = {"note": "__type__ and __value__"}
    assert loads(dumps(data)) == data


def test_django_style_lazy_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    class Promise:
        def __str__(self) -> str:
            return "translated"

    module = types.ModuleType("django.utils.functional")
    module.Promise = Promise  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "django.utils.functional", module)
    assert dumps([Promise()]) == '["translated"]'
