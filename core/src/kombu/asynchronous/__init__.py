"""The event loop: :class:`Hub`, with its timer and the READ/WRITE/ERR flags.

Not imported by ``import kombu``; Celery's worker and transports that
support asynchronous I/O import it when they run a loop.
"""

from __future__ import annotations

from kombu.utils.eventio import ERR, READ, WRITE

from .hub import Hub, get_event_loop, set_event_loop

__all__ = ("ERR", "READ", "WRITE", "Hub", "get_event_loop", "set_event_loop")
