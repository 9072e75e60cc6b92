"""Registers the AMQP transports with kombu (loaded through entry points).

This module must stay light: it does not import the ``amqp`` library.
"""

from __future__ import annotations

from typing import Callable

import kombu


@kombu.hookimpl
def kombu_register_transports(register: Callable[..., None]) -> None:
    register("pyamqp", "kombu_pyamqp.transport:Transport", aliases=("amqp",), api=(1, 0))
    # TLS by default, as kombu's ``amqps`` alias (SSLTransport).
    register("amqps", "kombu_pyamqp.transport:SSLTransport", api=(1, 0))
