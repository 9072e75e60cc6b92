"""The typed plugin contracts describe the transports that exist."""

from __future__ import annotations

import kombu_dictq.transport
import kombu_memory.transport
from kombu import Connection
from kombu.transport.protocols import QueuePrimitives
from kombu.transport.virtual import Channel


def test_virtual_channels_implement_the_queue_primitives() -> None:
    with Connection("memory://") as memory, Connection("dictq://") as dictq:
        channels = [memory.default_channel, dictq.default_channel]
        assert all(isinstance(c, QueuePrimitives) for c in channels)
        assert isinstance(channels[0], kombu_memory.transport.Channel)
        assert isinstance(channels[1], kombu_dictq.transport.Channel)


def test_an_object_without_the_primitives_is_not_a_channel() -> None:
    assert not isinstance(object(), QueuePrimitives)
    assert issubclass(Channel, QueuePrimitives)


def test_channels_keep_the_channel_contract() -> None:
    from kombu.transport.protocols import ChannelProtocol, TransportErrors

    with Connection("memory://") as memory, Connection("dictq://") as dictq:
        for conn in (memory, dictq):
            channel = conn.channel()
            try:
                assert isinstance(channel, ChannelProtocol)
            finally:
                channel.close()
            errors: TransportErrors = conn.transport
            assert all(issubclass(e, BaseException) for e in errors.connection_errors)
            assert all(issubclass(e, BaseException) for e in errors.channel_errors)


def test_the_channel_contract_names_what_the_core_calls() -> None:
    import ast
    import inspect

    import kombu.entity
    import kombu.message
    import kombu.messaging
    from kombu.transport.protocols import ChannelProtocol

    called = set()
    for module in (kombu.entity, kombu.messaging, kombu.message):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            # calls of the form channel.x(...), self.channel.x(...), (channel or ...).x(...)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and ast.unparse(node.func.value).endswith(("channel", "channel)"))):
                called.add(node.func.attr)
    contract = {name for name in dir(ChannelProtocol) if not name.startswith("_")}
    assert {"basic_publish", "queue_declare", "exchange_declare", "basic_ack"} <= called
    assert called - contract == set()
    assert {"message_to_python", "close", "flow", "basic_qos"} <= contract
    assert not isinstance(object(), ChannelProtocol)
