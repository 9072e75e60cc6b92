"""kombu.utils re-exports kombu's helpers and imports them lazily."""

from __future__ import annotations

import json
import subprocess
import sys

import kombu.utils
import pytest


def run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_reexports() -> None:
    from kombu.utils.collections import EqualityDict
    from kombu.utils.functional import retry_over_time
    from kombu.utils.objects import cached_property

    assert kombu.utils.EqualityDict is EqualityDict
    assert kombu.utils.retry_over_time is retry_over_time
    assert kombu.utils.cached_property is cached_property
    for name in kombu.utils.__all__:
        assert getattr(kombu.utils, name) is not None
        assert name in dir(kombu.utils)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kombu.utils.nope  # noqa: B018


HEAVY = ["yaml", "msgpack", "importlib.metadata", "inspect", "pickle"]


def test_importing_utils_is_cheap() -> None:
    loaded = run(
        "import sys, json, kombu.utils, kombu.utils.objects, kombu.utils.uuid;"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert loaded == []


def test_importing_serialization_does_not_import_optional_libraries() -> None:
    loaded = run(
        "import sys, json, kombu.serialization, kombu.compression;"
        "print(json.dumps([m for m in ('yaml', 'msgpack', 'importlib.metadata', 'brotli')"
        " if m in sys.modules]))"
    )
    assert loaded == []
