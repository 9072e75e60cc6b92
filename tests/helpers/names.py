"""Unique names, so tests can share a broker (and run twice) without clashing."""

from __future__ import annotations

import uuid


def unique_name(kind: str = "q", prefix: str = "kombu-test") -> str:
    """A fresh name such as ``kombu-test-q-1f2e3d4c5b6a``."""
    return f"{prefix}-{kind}-{uuid.uuid4().hex[:12]}"
