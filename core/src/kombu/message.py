"""The message a consumer receives."""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import Any, Callable

from kombu.compression import decompress
from kombu.exceptions import MessageStateError, reraise
from kombu.serialization import loads
from kombu.utils.functional import dictfilter

__all__ = ("ACK_STATES", "Message")

#: States in which a message can no longer be acknowledged or rejected.
ACK_STATES = frozenset({"ACK", "REJECTED", "REQUEUED"})

_NOT_DECODED: Any = object()

#: Whether this is PyPy (kombu 5.x's flag).
IS_PYPY = hasattr(sys, "pypy_version_info")


class Message:
    """A received message.

    Transports build these (or subclasses) from what the broker delivered.

    :param body: the raw body; decompressed here when the ``compression``
        header names a method, and encoded with ``postencode`` when it is
        text and ``postencode`` is given.
    :param delivery_tag: the broker's id of this delivery (used to ack).
    :param content_type: the MIME type of the serialized body.
    :param content_encoding: the character set of the serialized body.
    :param delivery_info: ``exchange``, ``routing_key``, ``redelivered``, ...
    :param properties: the message properties (``correlation_id``,
        ``reply_to``, ``priority``, ...).
    :param headers: the application headers.
    :param accept: the content types :meth:`decode` accepts (``None``: every
        serializer enabled for untrusted content).
    :param channel: the channel the message arrived on.

    Errors while decompressing or encoding the body are kept in
    :attr:`errors` and raised when the body is decoded.
    """

    MessageStateError = MessageStateError

    #: Set on messages delivered without acknowledgement (a ``no_ack``
    #: consumer or ``basic_get(no_ack=True)``): ack, reject and requeue do
    #: nothing for them, since the broker has already forgotten them.
    _no_ack = False

    __slots__ = (
        "_state", "channel", "delivery_tag", "content_type", "content_encoding",
        "delivery_info", "headers", "properties", "body", "_decoded_cache", "accept",
        "errors", "__dict__",
    )

    def __init__(self, body: Any = None, delivery_tag: Any = None,
                 content_type: str | None = None, content_encoding: str | None = None,
                 delivery_info: dict[str, Any] | None = None,
                 properties: dict[str, Any] | None = None,
                 headers: dict[str, Any] | None = None, postencode: str | None = None,
                 accept: Collection[str] | None = None, channel: Any = None,
                 **kwargs: Any) -> None:
        self.channel = channel
        self.delivery_tag = delivery_tag
        self.content_type = content_type
        self.content_encoding = content_encoding
        self.delivery_info = {} if delivery_info is None else delivery_info
        self.headers = headers = {} if headers is None else headers
        self.properties = {} if properties is None else properties
        self._decoded_cache = _NOT_DECODED
        self._state = "RECEIVED"
        self.accept = accept
        self.errors: list[Any] = []
        if headers:
            compression = headers.get("compression")
            if compression:
                try:
                    body = decompress(body, compression)
                except Exception:  # noqa: BLE001 - kept, raised when decoding
                    self.errors.append(sys.exc_info())
        if postencode and body.__class__ is str and not self.errors:
            try:
                body = body.encode(postencode)
            except Exception:  # noqa: BLE001 - kept, raised when decoding
                self.errors.append(sys.exc_info())
        self.body = body

    def _reraise_error(self, callback: Callable[[Message, BaseException], Any] | None = None
                       ) -> Any:
        """Raise the first error of :attr:`errors`, or pass it to ``callback``."""
        try:
            reraise(*self.errors[0])
        except Exception as exc:
            if not callback:
                raise
            return callback(self, exc)

    def _check_state(self) -> Any:
        """Return the channel to acknowledge on; raise if that is not possible."""
        channel = self.channel
        if channel is None:
            raise self._no_channel()
        if self._state in ACK_STATES:
            raise self._already_acknowledged()
        return channel

    def _no_channel(self) -> Exception:
        return self.MessageStateError(
            "This message does not have a receiving channel: messages built "
            "by hand cannot be acknowledged, rejected or requeued")

    def _already_acknowledged(self) -> Exception:
        return self.MessageStateError(f"Message already acknowledged with state: {self._state}")

    def ack(self, multiple: bool = False) -> None:
        """Acknowledge the message: the broker forgets it.

        Does nothing for a message delivered without acknowledgement (to a
        ``no_ack`` consumer, or fetched with ``no_ack=True``).

        :raises MessageStateError: already acknowledged, rejected or requeued.
        """
        channel = self.channel
        if channel is None:
            raise self._no_channel()
        if self._delivered_without_ack(channel):
            return
        if self._state in ACK_STATES:
            raise self._already_acknowledged()
        channel.basic_ack(self.delivery_tag, multiple=multiple)
        self._state = "ACK"

    def _delivered_without_ack(self, channel: Any) -> bool:
        if self._no_ack:
            return True
        no_ack_consumers = getattr(channel, "no_ack_consumers", None)
        if no_ack_consumers:
            tag = self.delivery_info.get("consumer_tag")
            if tag is not None and tag in no_ack_consumers:
                return True
        return False

    def ack_log_error(self, logger: Any, errors: tuple[type[BaseException], ...],
                      multiple: bool = False) -> None:
        """:meth:`ack`, logging ``errors`` at critical level instead of raising them."""
        try:
            self.ack(multiple=multiple)
        except errors as exc:
            logger.critical("Couldn't ack %r, reason:%r", self.delivery_tag, exc, exc_info=True)

    def reject_log_error(self, logger: Any, errors: tuple[type[BaseException], ...],
                         requeue: bool = False) -> None:
        """:meth:`reject`, logging ``errors`` at critical level instead of raising them."""
        try:
            self.reject(requeue=requeue)
        except errors as exc:
            logger.critical("Couldn't reject %r, reason: %r", self.delivery_tag, exc,
                            exc_info=True)

    def reject(self, requeue: bool = False) -> None:
        """Reject the message: dropped (or dead-lettered), or put back if ``requeue``.

        Does nothing for a message delivered without acknowledgement.

        :raises MessageStateError: already acknowledged, rejected or requeued.
        """
        channel = self._check_state()
        if self._delivered_without_ack(channel):
            return
        channel.basic_reject(self.delivery_tag, requeue=requeue)
        self._state = "REJECTED"

    def requeue(self) -> None:
        """Reject the message and put it back in its queue for redelivery.

        Does nothing for a message delivered without acknowledgement.

        :raises MessageStateError: already acknowledged, rejected or requeued.
        """
        channel = self._check_state()
        if self._delivered_without_ack(channel):
            return
        channel.basic_reject(self.delivery_tag, requeue=True)
        self._state = "REQUEUED"

    def decode(self) -> Any:
        """Deserialize the body (once: the result is cached).

        :raises ContentDisallowed: the content type is not in :attr:`accept`.
        :raises DecodeError: the body could not be deserialized.

        (kombu 5.x decodes again every time the result is falsy.)
        """
        decoded = self._decoded_cache
        if decoded is _NOT_DECODED:
            decoded = self._decoded_cache = self._decode()
        return decoded

    def _decode(self) -> Any:
        if self.errors:
            self._reraise_error()
        return loads(self.body, self.content_type, self.content_encoding, accept=self.accept)

    @property
    def acknowledged(self) -> bool:
        """Whether the message was acknowledged, rejected or requeued."""
        return self._state in ACK_STATES

    @property
    def payload(self) -> Any:
        """The decoded body (see :meth:`decode`)."""
        decoded = self._decoded_cache
        if decoded is _NOT_DECODED:
            decoded = self.decode()
        return decoded

    def __repr__(self) -> str:
        properties = self.properties
        info = self.delivery_info
        details = dictfilter(
            state=self._state,
            content_type=self.content_type,
            delivery_tag=self.delivery_tag,
            body_length=len(self.body) if self.body is not None else None,
            properties=dictfilter(correlation_id=properties.get("correlation_id"),
                                  type=properties.get("type")),
            delivery_info=dictfilter(exchange=info.get("exchange"),
                                     routing_key=info.get("routing_key")),
        )
        return f"<{type(self).__name__} object at {id(self):#x} with details {details!r}>"
