"""Typed contracts of the transport plugin API (``TRANSPORT_API`` 1.0).

:class:`QueuePrimitives` is what a virtual transport's ``Channel``
implements; :class:`RegisterTransport` is the ``register`` callable a
plugin's ``kombu_register_transports`` hook receives.  Both are
:class:`typing.Protocol` classes, for type checkers and ``isinstance``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

__all__ = ("QueuePrimitives", "RegisterTransport")


@runtime_checkable
class QueuePrimitives(Protocol):
    """The store operations kombu's virtual layer calls on a channel."""

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        """Create ``queue`` if missing (``queue_declare``)."""

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        """Whether ``queue`` exists (``queue_declare(passive=True)``)."""

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        """Append ``message`` at the tail of ``queue``."""

    def _put_at_head(self, queue: str, message: dict[str, Any]) -> None:
        """Put a requeued or restored ``message`` at the head of ``queue``."""

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """Remove and return the head of ``queue`` atomically; raise ``queue.Empty``."""

    def _size(self, queue: str) -> int:
        """The number of messages ready in ``queue``."""

    def _purge(self, queue: str) -> int:
        """Remove every ready message of ``queue``; return how many."""

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        """Remove ``queue`` and its messages (called once per binding: idempotent)."""


class RegisterTransport(Protocol):
    """``register(name, target, aliases=(), api=(1, 0))`` of the registration hook."""

    def __call__(self, name: str, target: str | type, aliases: Iterable[str] = ...,
                 api: Iterable[int] = ...) -> None:
        """Register transport ``name`` (``target``: ``'module:Class'`` or the class)."""
