"""The Hub does not block in poll while callbacks are waiting to run.

A callback that schedules another with ``call_soon`` from the loop thread
(the AMQP reader re-arming itself, Celery deferring an ack) must see it run
on the next pass, not after the poll timeout.  kombu 5.x polls with the
timer's timeout regardless, so a Celery worker on RabbitMQ with ``-P solo``
sat idle until the next timer (up to 2 s with heartbeats, 10 s without)
while the acks that would let the broker send more were pending.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

hub_module = pytest.importorskip("kombu.asynchronous.hub")


def test_a_callback_scheduled_by_a_ready_callback_is_not_held_by_poll() -> None:
    hub = hub_module.Hub()
    idle, peer = socket.socketpair()  # a reader that never becomes readable
    try:
        hub.add_reader(idle, lambda *args: None)
        hub.call_later(3, lambda: None)  # without it, poll would wait a default 1 s
        timeouts: list[Any] = []
        poll = hub.poller.poll

        def recording_poll(timeout: Any) -> Any:
            timeouts.append(timeout)
            return poll(timeout)

        hub.poller.poll = recording_poll
        ran: list[str] = []

        def second() -> None:
            ran.append("second")

        def first() -> None:
            ran.append("first")
            hub.call_soon(second)

        hub.call_soon(first)
        loop = hub.create_loop()
        next(loop)
        assert ran == ["first"]
        assert timeouts and timeouts[0] == 0, (
            f"polled with timeout {timeouts[0]!r} while a callback was pending")
        next(loop)
        assert ran == ["first", "second"]
    finally:
        hub.close()
        idle.close()
        peer.close()
