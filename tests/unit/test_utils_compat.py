"""kombu.utils.compat."""

from __future__ import annotations

import gc
import io
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kombu.utils import compat
from kombu.utils.compat import (
    coro,
    detect_environment,
    fileno,
    maybe_fileno,
    nested,
    register_after_fork,
)


def test_detect_environment_default() -> None:
    assert detect_environment() == "default"
    assert compat._detect_environment() == "default"


def test_fileno() -> None:
    with socket.socket() as sock:
        assert fileno(sock) == sock.fileno()
        assert maybe_fileno(sock) == sock.fileno()
    assert fileno(7) == 7


def test_maybe_fileno_without_descriptor() -> None:
    assert maybe_fileno(object()) is None
    assert maybe_fileno(io.BytesIO()) is None  # UnsupportedOperation


def test_nested_enters_in_order_and_exits_in_reverse() -> None:
    events: list[str] = []

    @contextmanager
    def cm(name: str) -> Iterator[str]:
        events.append(f"enter {name}")
        try:
            yield name
        finally:
            events.append(f"exit {name}")

    with nested(cm("a"), cm("b")) as values:
        assert values == ["a", "b"]
    assert events == ["enter a", "enter b", "exit b", "exit a"]


def test_nested_exits_entered_managers_on_error() -> None:
    events: list[str] = []

    @contextmanager
    def ok() -> Iterator[None]:
        try:
            yield
        finally:
            events.append("exit ok")

    @contextmanager
    def broken() -> Iterator[None]:
        raise RuntimeError("cannot enter")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="cannot enter"), nested(ok(), broken()):
        pass  # pragma: no cover
    assert events == ["exit ok"]


def test_coro_primes_the_generator() -> None:
    @coro
    def collector(into: list[Any]) -> Iterator[None]:
        while True:
            into.append((yield))

    items: list[Any] = []
    gen = collector(items)
    gen.send(1)  # type: ignore[attr-defined]
    gen.send(2)  # type: ignore[attr-defined]
    assert items == [1, 2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_register_after_fork_runs_in_the_child_only() -> None:
    class Resource:
        def __init__(self) -> None:
            self.reset = False

    resource = Resource()
    read_fd, write_fd = os.pipe()

    def after_fork(obj: Resource) -> None:
        obj.reset = True
        os.write(write_fd, b"ran")

    def broken(obj: Resource) -> None:
        raise RuntimeError("callback failure must not stop the others")

    register_after_fork(resource, broken)
    register_after_fork(resource, after_fork)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0 if resource.reset else 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        assert reader.read() == b"ran"
    assert os.WEXITSTATUS(status) == 0
    assert resource.reset is False  # the parent is untouched


def test_register_after_fork_holds_objects_weakly() -> None:
    class Resource:
        pass

    def callback(obj: Any) -> None:
        pass

    resource = Resource()
    register_after_fork(resource, callback)

    def entries() -> list[Any]:  # ours only: other tests' objects may go meanwhile
        return [key for key in list(compat._after_fork_registry.keys()) if key[2] is callback]

    assert len(entries()) == 1
    del resource
    gc.collect()
    assert entries() == []


def test_entrypoints_reads_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    class EP:
        name = "x"

        def load(self) -> str:
            return "loaded"

    monkeypatch.setattr(compat, "iter_entry_points", lambda group: [EP()])
    assert [(ep.name, obj) for ep, obj in compat.entrypoints("g")] == [("x", "loaded")]


def test_iter_entry_points_real_group() -> None:
    # pytest registers itself under "console_scripts" in every environment.
    names = {ep.name for ep in compat.iter_entry_points("console_scripts")}
    assert "pytest" in names or "py.test" in names


def test_importing_compat_does_not_import_metadata() -> None:
    import subprocess

    code = (
        "import sys, kombu.utils.compat; "
        "print('importlib.metadata' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"
