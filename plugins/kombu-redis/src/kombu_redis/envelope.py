"""kombu's message envelope as stored in Redis: encoding and checked parsing.

Pure: nothing here talks to Redis.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from kombu.transport import virtual
from kombu.utils.json import dumps, loads

__all__ = ("Message", "UndecodableBody", "encode", "parse")

#: Bodies longer than this are spliced into the JSON text instead of scanned.
_SPLICE_OVER = 2048


class UndecodableBody(Exception):
    """A message's body cannot be decoded with its ``body_encoding``."""

    def __init__(self, payload: Any, error: BaseException) -> None:
        super().__init__(f"cannot decode the body ({error!r})")
        self.payload = payload


class Message(virtual.Message):
    """A delivered message; a body its encoding cannot decode raises UndecodableBody."""

    __slots__ = ()

    def __init__(self, payload: dict[str, Any], channel: Any = None, **kwargs: Any) -> None:
        try:
            super().__init__(payload, channel=channel, **kwargs)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # binascii.Error too
            raise UndecodableBody(payload, exc) from exc


def encode(message: dict[str, Any]) -> str:
    """The JSON text of a message envelope.

    A large base64 body needs no escaping, so it is spliced in rather than
    scanned by the JSON encoder (the text is equivalent JSON).
    """
    body = message.get("body")
    if (type(body) is str and len(body) > _SPLICE_OVER
            and message["properties"].get("body_encoding") == "base64"):
        rest = dumps({k: v for k, v in message.items() if k != "body"})
        return '{"body": "' + body + ('", ' + rest[1:] if len(rest) > 2 else '"}')
    return dumps(message)


def parse(raw: Any, tag: Any, codecs: Container[str]) -> dict[str, Any]:
    """The envelope stored as ``raw``, delivered under ``tag`` if one is given.

    Raises ValueError, TypeError, KeyError or AttributeError when ``raw`` is
    not JSON, not a kombu envelope (no ``properties.delivery_tag``), or names
    a body encoding that is not in ``codecs``.  A message recorded as
    unacknowledged is delivered with the tag it was recorded under.
    """
    payload = loads(raw)
    props = payload["properties"]
    props["delivery_tag"]
    encoding = props.get("body_encoding")
    if encoding and encoding.lower() != "utf-8" and encoding not in codecs:
        raise ValueError(f"unknown body encoding {encoding!r}")
    if tag:
        props["delivery_tag"] = tag
    return payload  # type: ignore[no-any-return]
