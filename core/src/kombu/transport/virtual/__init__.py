"""kombu's virtual transport layer (AMQP emulation over a queue store)."""

from kombu.transport.virtual.base import (
    AbstractChannel,
    Base64,
    BrokerState,
    Channel,
    Empty,
    Management,
    Message,
    NotEquivalentError,
    QoS,
    Transport,
    UndeliverableWarning,
    binding_key_t,
    queue_binding_t,
)
from kombu.transport.virtual.exchange import (
    STANDARD_EXCHANGE_TYPES,
    DirectExchange,
    ExchangeType,
    FanoutExchange,
    HeadersExchange,
    TopicExchange,
)

__all__ = (
    "STANDARD_EXCHANGE_TYPES",
    "AbstractChannel",
    "Base64",
    "BrokerState",
    "Channel",
    "DirectExchange",
    "Empty",
    "ExchangeType",
    "FanoutExchange",
    "HeadersExchange",
    "Management",
    "Message",
    "NotEquivalentError",
    "QoS",
    "TopicExchange",
    "Transport",
    "UndeliverableWarning",
    "binding_key_t",
    "queue_binding_t",
)
