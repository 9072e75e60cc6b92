"""kombu.utils.uuid."""

from __future__ import annotations

import uuid as stduuid

from kombu.utils.uuid import uuid


def test_format_and_version() -> None:
    for _ in range(500):
        value = uuid()
        parsed = stduuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
        assert parsed.variant == stduuid.RFC_4122


def test_unique() -> None:
    assert len({uuid() for _ in range(1000)}) == 1000


def test_custom_factory() -> None:
    fixed = stduuid.UUID(int=1)
    assert uuid(lambda: fixed) == str(fixed)


def test_package_reexport_is_the_function() -> None:
    import kombu.utils

    assert kombu.utils.uuid is uuid
