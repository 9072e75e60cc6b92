"""Entry point of kombu-dictq: names the transport without importing it."""

from __future__ import annotations

from typing import Callable

import kombu


@kombu.hookimpl
def kombu_register_transports(register: Callable[..., object]) -> None:
    register("dictq", "kombu_dictq.transport:Transport", aliases=("dq",), api=(1, 0))
