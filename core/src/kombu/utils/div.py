"""Last-resort helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, Any

__all__ = ("emergency_dump_state",)


def emergency_dump_state(
    state: Any,
    open_file: Callable[..., IO[Any]] = open,
    dump: Callable[..., Any] | None = None,
    stderr: IO[str] | None = None,
) -> str:
    """Save ``state`` (e.g. messages that could not be restored) to a new file.

    The state is pickled (``dump(state, file, protocol=0)``); if that fails,
    its :func:`pprint.pformat` text is written instead.  The file's path is
    printed to ``stderr`` and returned.  (kombu opens the file in text mode,
    where pickling always fails; here it is binary, so the pickle is kept.)
    """
    from pprint import pformat
    from tempfile import mkstemp

    stderr = sys.stderr if stderr is None else stderr
    if dump is None:
        import pickle

        dump = pickle.dump
    fd, persist = mkstemp(prefix="kombu-state-", suffix=".dump")
    os.close(fd)
    print(f"EMERGENCY DUMP STATE TO FILE -> {persist} <-", file=stderr)
    with open_file(persist, "wb") as fh:
        try:
            dump(state, fh, protocol=0)
        except Exception as exc:  # noqa: BLE001  (any failure: fall back to text)
            print(f"Cannot pickle state: {exc!r}. Fallback to pformat.", file=stderr)
            fh.seek(0)
            fh.truncate()
            fh.write(pformat(state).encode("utf-8", "replace"))
    return persist
