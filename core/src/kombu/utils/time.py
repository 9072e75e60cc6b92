"""Time unit conversions."""

from __future__ import annotations

__all__ = ("maybe_ms_to_s", "maybe_s_to_ms")


def maybe_s_to_ms(v: float | None) -> int | None:
    """Convert seconds to whole milliseconds; ``None`` stays ``None``."""
    return int(float(v) * 1000.0) if v is not None else None


def maybe_ms_to_s(v: float | None) -> float | None:
    """Convert milliseconds to seconds; ``None`` stays ``None``."""
    return float(v) / 1000.0 if v is not None else None
