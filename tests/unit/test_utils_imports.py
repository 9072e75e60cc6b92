"""kombu.utils.imports."""

from __future__ import annotations

import json
import os.path
from collections import OrderedDict

import pytest
from kombu.utils.imports import instantiate, qualname, symbol_by_name


def test_dotted_name() -> None:
    assert symbol_by_name("collections.OrderedDict") is OrderedDict


def test_colon_name() -> None:
    assert symbol_by_name("os.path:join") is os.path.join
    assert symbol_by_name("collections:OrderedDict") is OrderedDict


def test_module_without_separator() -> None:
    assert symbol_by_name("json") is json


def test_non_string_returned_unchanged() -> None:
    assert symbol_by_name(OrderedDict) is OrderedDict


def test_aliases() -> None:
    aliases = {"od": "collections:OrderedDict"}
    assert symbol_by_name("od", aliases) is OrderedDict
    assert symbol_by_name("json.loads", aliases) is json.loads


def test_package_relative() -> None:
    assert symbol_by_name(".decoder:JSONDecoder", package="json") is json.JSONDecoder
    assert symbol_by_name("decoder", package="json") is json


def test_custom_sep() -> None:
    assert symbol_by_name("collections/OrderedDict", sep="/") is OrderedDict


def test_custom_importer() -> None:
    seen = []

    def imp(name: str, package: str | None = None, **kwargs: object) -> object:
        seen.append((name, package))
        return json

    assert symbol_by_name("anything:loads", imp=imp) is json.loads
    assert seen == [("anything", None)]


def test_missing_module_raises_import_error() -> None:
    with pytest.raises(ImportError):
        symbol_by_name("no_such_module_kombu:Thing")


def test_missing_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        symbol_by_name("collections:NoSuchThing")


def test_default_on_failure() -> None:
    assert symbol_by_name("no_such_module_kombu:Thing", default=5) == 5
    assert symbol_by_name("collections:NoSuchThing", default="d") == "d"


def test_relative_name_without_package() -> None:
    with pytest.raises((TypeError, ValueError)):
        symbol_by_name("..x:Y")


def test_instantiate() -> None:
    assert instantiate("collections:OrderedDict", [("a", 1)]) == OrderedDict(a=1)
    assert instantiate(dict, a=1) == {"a": 1}


def test_qualname() -> None:
    assert qualname(OrderedDict) == "collections.OrderedDict"
    assert qualname(OrderedDict()) == "collections.OrderedDict"
    assert qualname(dict) == "dict"
    assert qualname(json.JSONDecoder.decode) == "json.decoder.JSONDecoder.decode"
