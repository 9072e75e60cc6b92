"""Real kombu 5.x in a virtualenv of its own, for the interoperability tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.brokers import under_ci

__all__ = ["kombu5_python"]

ROOT = Path(__file__).resolve().parents[2]


def kombu5_python() -> str:
    """The Python of real kombu 5.x: ``KOMBU5_PYTHON``, else ``.venv-kombu``.

    Skips the test when there is none, or fails it under CI (``./dev test``
    creates ``.venv-kombu``, so its absence there is a setup error).
    """
    configured = os.environ.get("KOMBU5_PYTHON")
    if configured:
        return configured
    candidate = ROOT / ".venv-kombu" / "bin" / "python"
    if not candidate.exists():
        message = ("real kombu 5.x is not available: set KOMBU5_PYTHON or create "
                   ".venv-kombu at the repository root (./dev test does, or: python -m venv "
                   ".venv-kombu && .venv-kombu/bin/pip install 'kombu[redis]>=5,<6')")
        if under_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return str(candidate)
