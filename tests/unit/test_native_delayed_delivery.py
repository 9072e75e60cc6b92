"""kombu.transport.native_delayed_delivery: names and routing keys (no broker)."""

from __future__ import annotations

import pytest
from kombu.transport import native_delayed_delivery as ndd
from kombu.transport.native_delayed_delivery import (
    CELERY_DELAYED_DELIVERY_EXCHANGE,
    MAX_LEVEL,
    MAX_NUMBER_OF_BITS_TO_USE,
    calculate_routing_key,
    level_name,
)


def test_constants() -> None:
    assert MAX_NUMBER_OF_BITS_TO_USE == 28
    assert MAX_LEVEL == 27
    assert CELERY_DELAYED_DELIVERY_EXCHANGE == "celery_delayed_delivery"


def test_level_names() -> None:
    assert level_name(0) == "celery_delayed_0"
    assert level_name(27) == "celery_delayed_27"
    assert level_name(3, "app") == "app_celery_delayed_3"
    assert level_name(3, "") == "celery_delayed_3"
    with pytest.raises(ValueError, match="non-negative"):
        level_name(-1)
    assert ndd._celery_delayed_delivery_exchange() == "celery_delayed_delivery"
    assert ndd._celery_delayed_delivery_exchange("app") == "app_celery_delayed_delivery"


def test_routing_key_bits() -> None:
    key = calculate_routing_key(1, "task.key")
    assert key == "0." * 27 + "1.task.key"
    key = calculate_routing_key(5, "rk")
    words = key.split(".")
    assert words[:28] == list(f"{5:028b}") and words[28:] == ["rk"]
    top = calculate_routing_key(2 ** 28 - 1, "rk")
    assert top == "1." * 28 + "rk"


def test_existing_prefix_is_replaced() -> None:
    once = calculate_routing_key(10, "tasks.add")
    twice = calculate_routing_key(3, once)
    assert twice == calculate_routing_key(3, "tasks.add")
    assert len(twice.split(".")) == 30
    # a key that only looks a little like a prefix is kept
    assert calculate_routing_key(1, "1.0.x").endswith(".1.0.x")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="countdown must be a positive number"):
        calculate_routing_key(0, "rk")
    with pytest.raises(ValueError, match="countdown must be a positive number"):
        calculate_routing_key(-5, "rk")
    with pytest.raises(ValueError, match="routing_key must be non-empty"):
        calculate_routing_key(5, "")
    with pytest.raises(ValueError, match="less than 2\\*\\*28"):
        calculate_routing_key(2 ** 28, "rk")


def test_queue_type_is_checked() -> None:
    from kombu import Connection

    with pytest.raises(ValueError, match="classic or quorum"):
        ndd.declare_native_delayed_delivery_exchanges_and_queues(
            Connection("memory://"), "stream")


def test_bit_patterns() -> None:
    assert ndd._bit_pattern(27, "1") == "1.#"
    assert ndd._bit_pattern(26, "0") == "*.0.#"
    assert ndd._bit_pattern(0, "1") == "*." * 27 + "1.#"
