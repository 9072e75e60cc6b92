"""Fixtures shared by the broker tests (redis/, amqp/ and the rest)."""

from __future__ import annotations

from typing import Callable

import pytest
from helpers.draining import drain_until, is_quiet


@pytest.fixture
def drain() -> Callable[..., None]:
    """``drain(conn, got, n, timeout=10)``: drain until ``len(got) >= n``."""
    return drain_until


@pytest.fixture
def quiet() -> Callable[..., bool]:
    """``quiet(conn, seconds=0.3)``: True if nothing arrives meanwhile."""
    return is_quiet
