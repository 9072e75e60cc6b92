"""Implements every kombu observability event hook and does nothing.

Installed only while benchmarking (see "Benchmarks" in ``DEVELOPERS.md``):
``pip install ./bench/observe_noop``, then ``pip uninstall kombu-observe-noop``.
"""

from __future__ import annotations

from typing import Any

import kombu


@kombu.hookimpl
def kombu_connection_established(connection: Any, url: str) -> None:
    pass


@kombu.hookimpl
def kombu_connection_lost(connection: Any, exc: Any) -> None:
    pass


@kombu.hookimpl
def kombu_connection_failover(from_url: str, to_url: str, reason: Any) -> None:
    pass


@kombu.hookimpl
def kombu_before_publish(exchange: str, routing_key: str, headers: Any) -> None:
    pass


@kombu.hookimpl
def kombu_after_publish(exchange: str, routing_key: str, exc: Any) -> None:
    pass


@kombu.hookimpl
def kombu_message_delivered(queue: Any, headers: Any, body_size: int) -> None:
    pass


@kombu.hookimpl
def kombu_message_handled(queue: Any, exc: Any) -> None:
    pass


@kombu.hookimpl
def kombu_message_acked(delivery_tag: Any) -> None:
    pass


@kombu.hookimpl
def kombu_message_rejected(delivery_tag: Any) -> None:
    pass


@kombu.hookimpl
def kombu_message_requeued(delivery_tag: Any) -> None:
    pass


@kombu.hookimpl
def kombu_consumer_started(queue: str, consumer_tag: str) -> None:
    pass


@kombu.hookimpl
def kombu_consumer_cancelled(queue: str, consumer_tag: str) -> None:
    pass
