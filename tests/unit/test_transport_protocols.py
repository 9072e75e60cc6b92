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
