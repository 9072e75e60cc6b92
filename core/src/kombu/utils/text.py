"""Text helpers: fuzzy matching, version strings, regex escaping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from difflib import SequenceMatcher

from kombu import version_info_t

__all__ = (
    "escape_regex",
    "fmatch_best",
    "fmatch_iter",
    "pluralize",
    "version_string_as_tuple",
)


def escape_regex(p: str, white: str = "") -> str:
    """Backslash-escape every character of ``p`` that is not alphanumeric or in ``white``."""
    return "".join(
        c if c.isalnum() or c in white else ("\\000" if c == "\000" else "\\" + c) for c in p
    )


def fmatch_iter(
    needle: str, haystack: Iterable[str], min_ratio: float = 0.6
) -> Iterator[tuple[float, str]]:
    """Yield ``(ratio, key)`` for every key of ``haystack`` similar enough to ``needle``."""
    for key in haystack:
        ratio = SequenceMatcher(None, needle, key).ratio()
        if ratio >= min_ratio:
            yield ratio, key


def fmatch_best(needle: str, haystack: Iterable[str], min_ratio: float = 0.6) -> str | None:
    """Return the key of ``haystack`` most similar to ``needle``, or ``None``."""
    best = max(fmatch_iter(needle, haystack, min_ratio), default=None)
    return best[1] if best is not None else None


def pluralize(n: float, text: str, suffix: str = "s") -> str:
    """Return ``text`` with ``suffix`` added unless ``n`` is exactly one."""
    return text + suffix if n != 1 else text


def version_string_as_tuple(s: str) -> version_info_t:
    """Parse ``'X.Y.Z[level][-serial]'`` into a :class:`kombu.version_info_t`.

    ``'5.3.0rc1-40'`` gives ``(5, 3, 0, 'rc1', '40')``; missing parts are
    ``0`` or ``''``.
    """
    parts = s.split(".")
    if len(parts) > 5:
        raise ValueError(f"Not a version string: {s!r}")
    major, minor, micro_text, level, serial = (parts + ["0", "0", "", ""][len(parts) - 1:])[:5]
    micro, split_level = _split_micro(micro_text)
    level = split_level or level
    if not serial and "-" in level:
        level, _, serial = level.partition("-")
    return version_info_t(int(major), int(minor), micro, level, serial)


def _split_micro(micro: str) -> tuple[int, str]:
    digits = len(micro) - len(micro.lstrip("0123456789"))
    return int(micro[:digits] or 0), micro[digits:]
