"""kombu.utils.collections."""

from __future__ import annotations

import pytest
from kombu.utils.collections import EqualityDict, HashedSeq, eqhash


class Entity:
    def __init__(self, name: str) -> None:
        self.name = name

    def __eqhash__(self) -> int:
        return hash(("entity", self.name))


def test_hashed_seq() -> None:
    seq = HashedSeq(1, "a")
    assert seq == [1, "a"]
    assert hash(seq) == hash((1, "a"))
    assert {seq: 1}[seq] == 1


def test_eqhash() -> None:
    assert eqhash("x") == hash("x")
    assert eqhash(Entity("q")) == eqhash(Entity("q"))
    assert eqhash(Entity("q")) != eqhash(Entity("r"))


def test_equal_entities_share_a_key() -> None:
    d = EqualityDict()
    d[Entity("q")] = 1
    assert d[Entity("q")] == 1
    assert Entity("q") in d
    assert Entity("r") not in d
    assert d.get(Entity("q")) == 1
    assert d.get(Entity("r"), 5) == 5
    d[Entity("q")] = 2
    assert len(d) == 1
    assert d[Entity("q")] == 2
    del d[Entity("q")]
    assert not d


def test_plain_keys_use_hash() -> None:
    d = EqualityDict()
    d["a"] = 1
    assert d["a"] == 1
    assert "a" in d
    assert list(d) == [hash("a")]


def test_missing_key_raises_key_error() -> None:
    d = EqualityDict()
    with pytest.raises(KeyError):
        d[Entity("nope")]
    with pytest.raises(KeyError):
        del d["nope"]


def test_subclass_missing() -> None:
    class Defaulting(EqualityDict):
        def __missing__(self, key: object) -> str:
            return "default"

    assert Defaulting()["x"] == "default"


def test_pop_and_setdefault() -> None:
    d = EqualityDict()
    assert d.setdefault(Entity("a"), 1) == 1
    assert d.setdefault(Entity("a"), 2) == 1
    assert d.pop(Entity("a")) == 1
    assert d.pop(Entity("a"), None) is None
    with pytest.raises(KeyError):
        d.pop(Entity("a"))
