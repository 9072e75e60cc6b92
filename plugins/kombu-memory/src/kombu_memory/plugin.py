"""Entry point of kombu-memory: tells kombu where the transport lives."""

import kombu


@kombu.hookimpl
def kombu_register_transports(register):  # type: ignore[no-untyped-def]
    register("memory", "kombu_memory.transport:Transport", api=(1, 0))
