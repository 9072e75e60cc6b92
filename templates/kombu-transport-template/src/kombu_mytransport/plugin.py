"""The ``kombu.transports`` entry point: names the transport, imports no driver."""

from __future__ import annotations

from typing import Callable

import kombu


@kombu.hookimpl
def kombu_register_transports(register: Callable[..., object]) -> None:
    # The class is imported on first use; api is the kombu.TRANSPORT_API
    # this plugin is written for.
    register("mytransport", "kombu_mytransport.transport:Transport", aliases=(), api=(1, 0))
