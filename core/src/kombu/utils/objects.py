"""Object helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

__all__ = ("cached_property",)

T = TypeVar("T")
_MISSING: Any = object()


class cached_property(Generic[T]):
    """A property computed once per instance and then stored on it.

    The value lives in the instance ``__dict__``: assigning stores a new
    value and ``del`` forgets it, so the next access computes it again.
    Deleting a value that was never computed does nothing, as in kombu
    (Celery's prefork children ``del`` a pool that may never have been
    made).

    As in kombu, :meth:`setter` and :meth:`deleter` may be added::

        @cached_property
        def connection(self):
            return Connection()

        @connection.setter          # returns the value to store
        def connection(self, value):
            return value

        @connection.deleter         # called with the value being discarded
        def connection(self, value):
            value.close()
    """

    def __init__(
        self,
        fget: Callable[[Any], T],
        fset: Callable[[Any, Any], T] | None = None,
        fdel: Callable[[Any, T], Any] | None = None,
        doc: str | None = None,
    ) -> None:
        self.func = self.fget = fget
        self.fset = fset
        self.fdel = fdel
        self.__doc__ = doc or fget.__doc__
        self.__name__ = self.attrname = fget.__name__
        self.__module__ = fget.__module__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        cache = instance.__dict__
        try:
            return cache[self.attrname]
        except KeyError:
            value = cache[self.attrname] = self.fget(instance)
            return value

    def __set__(self, instance: object, value: Any) -> None:
        if self.fset is not None:
            value = self.fset(instance, value)
        instance.__dict__[self.attrname] = value

    def __delete__(self, instance: object) -> None:
        value = instance.__dict__.pop(self.attrname, _MISSING)
        if self.fdel is not None and value is not _MISSING:
            self.fdel(instance, value)

    def setter(self, fset: Callable[[Any, Any], T]) -> cached_property[T]:
        """Return a copy that passes assigned values through ``fset``."""
        return type(self)(self.fget, fset, self.fdel, self.__doc__)

    def deleter(self, fdel: Callable[[Any, T], Any]) -> cached_property[T]:
        """Return a copy that calls ``fdel(instance, value)`` on ``del``."""
        return type(self)(self.fget, self.fset, fdel, self.__doc__)
