"""The channel's QoS with acknowledgement emulation: acks, requeues, restores
go to the channel's ack pipeline and restorer."""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast

from kombu.transport import virtual

from kombu_redis.acks import AckPipeline
from kombu_redis.restore import Restorer

__all__ = ("QoS",)

logger = logging.getLogger("kombu.transport.redis")


class _Parts(Protocol):
    acks: AckPipeline
    restorer: Restorer


class QoS(virtual.QoS):
    """Acknowledgement emulation backed by the ``unacked`` hash and its index."""

    def _parts(self) -> _Parts:
        return cast(_Parts, self.channel)

    def ack(self, delivery_tag: Any) -> None:
        self._parts().acks.ack(delivery_tag)
        self._quick_ack(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if requeue:
            message = self._delivered.get(delivery_tag)
            source = getattr(message, "_source_queue", None)
            self._parts().restorer.restore_tags(
                [delivery_tag], leftmost=True,
                sources={delivery_tag: source} if source else None)
        else:
            self._parts().acks.ack(delivery_tag)
        self._quick_ack(delivery_tag)

    def restore_unacked(self) -> list[tuple[BaseException, Any]]:
        """Put every unacknowledged message of this channel back at once."""
        self._flush()
        delivered, dirty = self._delivered, self._dirty
        tags: list[Any] = []
        sources: dict[Any, str] = {}
        while delivered:  # newest first, so the oldest ends up consumed first
            tag, message = delivered.popitem()
            if tag not in dirty:
                tags.append(tag)
                source = getattr(message, "_source_queue", None)
                if source:
                    sources[tag] = source
        if tags:
            try:
                self._parts().restorer.restore_tags(tags, sources=sources)
            except self.channel.connection.connection_errors as exc:
                logger.warning("Could not restore %d unacknowledged message(s) now (%r); "
                               "they return after visibility_timeout", len(tags), exc)
        return []

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        """Restore messages whose consumers let visibility_timeout pass."""
        self._parts().restorer.restore_visible()

    def held(self) -> list[Any]:
        """Tags delivered and not acked (safe from another thread).

        The containers are copied in one C-level step each; a copy that
        races a change is taken again (at most three times, then nothing:
        the next pass sees them).
        """
        for _ in range(3):
            try:
                delivered = list(self._delivered)
                dirty = set(self._dirty)
                break
            except RuntimeError:  # changed size while copied: copy again
                continue
        else:
            return []
        return [t for t in delivered if t not in dirty]
