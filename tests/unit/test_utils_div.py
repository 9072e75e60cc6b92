"""kombu.utils.div.emergency_dump_state and kombu.utils.time."""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

from kombu.utils.div import emergency_dump_state
from kombu.utils.time import maybe_ms_to_s, maybe_s_to_ms


def test_dump_is_a_readable_pickle() -> None:
    stderr = io.StringIO()
    state = [{"body": "x", "delivery_tag": 1}]
    path = emergency_dump_state(state, stderr=stderr)
    try:
        assert f"-> {path} <-" in stderr.getvalue()
        with open(path, "rb") as fh:
            assert pickle.load(fh) == state
    finally:
        os.unlink(path)


def test_unpicklable_state_falls_back_to_pformat() -> None:
    stderr = io.StringIO()
    state = {"fn": lambda: None, "n": 1}
    path = emergency_dump_state(state, stderr=stderr)
    try:
        assert "Cannot pickle state" in stderr.getvalue()
        with open(path, "rb") as fh:
            text = fh.read().decode()
        assert "'n': 1" in text
        assert "<function" in text
    finally:
        os.unlink(path)


def test_custom_dump() -> None:
    def dump(state: Any, fh: Any, protocol: int) -> None:
        fh.write(repr((state, protocol)).encode())

    path = emergency_dump_state([1], dump=dump, stderr=io.StringIO())
    try:
        with open(path, "rb") as fh:
            assert fh.read() == b"([1], 0)"
    finally:
        os.unlink(path)


def test_time_conversions() -> None:
    assert maybe_s_to_ms(1.5) == 1500
    assert maybe_s_to_ms(0) == 0
    assert maybe_s_to_ms(None) is None
    assert maybe_ms_to_s(1500) == 1.5
    assert maybe_ms_to_s(None) is None
