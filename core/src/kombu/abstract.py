"""Base classes of the entities (exchanges, queues, bindings)."""

from __future__ import annotations

from copy import copy
from typing import Any, Callable, ClassVar, Optional, TypeVar

from kombu.connection import maybe_channel
from kombu.exceptions import NotBoundError
from kombu.utils.functional import ChannelPromise

__all__ = ("MaybeChannelBound", "Object")

_T = TypeVar("_T", bound="MaybeChannelBound")

#: ``(name, type)`` pairs of :attr:`Object.attrs`.
AttrSpec = tuple[tuple[str, Optional[Callable[[Any], Any]]], ...]


def unpickle_dict(cls: type[Object], kwargs: dict[str, Any]) -> Object:
    """Rebuild an :class:`Object` from its :meth:`Object.as_dict` (pickle helper)."""
    return cls(**kwargs)


class Object:
    """An object described by its :attr:`attrs`.

    ``attrs`` lists ``(name, type)`` pairs: the constructor sets each named
    keyword argument that is not ``None`` as an attribute (converted with
    ``type`` when it is not ``None``), and leaves the class default otherwise.
    Keyword arguments not listed are ignored, as in kombu.  Copies and
    pickles are rebuilt from :meth:`as_dict`.
    """

    attrs: ClassVar[AttrSpec] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for name, type_ in self.attrs:
            value = kwargs.get(name)
            if value is not None:
                setattr(self, name, type_(value) if type_ is not None else value)
            elif not hasattr(self, name):
                setattr(self, name, None)

    def as_dict(self, recurse: bool = False) -> dict[str, Any]:
        """The attributes listed in :attr:`attrs`; nested objects too if ``recurse``."""
        result = {}
        for name, type_ in self.attrs:
            value = getattr(self, name)
            if recurse and isinstance(value, Object):
                value = value.as_dict(recurse=True)
            elif type_ is not None and value is not None:
                value = type_(value)
            result[name] = value
        return result

    def __reduce__(self) -> Any:
        return unpickle_dict, (self.__class__, self.as_dict())

    def __copy__(self) -> Any:
        return self.__class__(**self.as_dict())


class MaybeChannelBound(Object):
    """An object that can be bound to a channel.

    ``entity(channel)`` and :meth:`bind` return a bound copy;
    :meth:`maybe_bind` binds in place.  A :class:`~kombu.Connection` may be
    given instead of a channel: its default channel is used.
    """

    _channel: Any = None
    _is_bound = False

    #: Whether :func:`~kombu.common.maybe_declare` may skip declaring an
    #: entity it has already declared on the same connection.
    can_cache_declaration = False

    def __call__(self: _T, channel: Any) -> _T:
        """``entity(channel)`` is ``entity.bind(channel)``."""
        return self.bind(channel)

    def bind(self: _T, channel: Any) -> _T:
        """Return a copy of this entity bound to ``channel``."""
        return copy(self).maybe_bind(channel)

    def maybe_bind(self: _T, channel: Any) -> _T:
        """Bind to ``channel`` unless already bound; return ``self``."""
        if not self.is_bound and channel:
            self._channel = maybe_channel(channel)
            self.when_bound()
            self._is_bound = True
        return self

    def revive(self, channel: Any) -> None:
        """Rebind to ``channel`` after a reconnect (used by ``Connection.ensure``)."""
        if self.is_bound:
            self._channel = channel
            self.when_bound()

    def when_bound(self) -> None:
        """Called when the entity is bound to a channel."""

    def __repr__(self) -> str:
        return self._repr_entity(type(self).__name__)

    def _repr_entity(self, item: Any = "") -> str:
        item = item or type(self).__name__
        if self.is_bound:
            return f"<{item} bound to chan:{self.channel.channel_id}>"
        return f"<unbound {item}>"

    @property
    def is_bound(self) -> bool:
        """Whether the entity is bound to a channel."""
        return self._is_bound and self._channel is not None

    @property
    def channel(self) -> Any:
        """The channel the entity is bound to (:exc:`NotBoundError` if unbound)."""
        channel = self._channel
        if channel is None:
            raise NotBoundError(
                f"Can't call method on {type(self).__name__} not bound to a channel: "
                f"bind it first with entity.bind(channel) or entity(channel)")
        if isinstance(channel, ChannelPromise):
            channel = self._channel = channel()
        return channel
