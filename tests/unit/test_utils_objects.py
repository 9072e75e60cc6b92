"""kombu.utils.objects.cached_property."""

from __future__ import annotations

from typing import Any, ClassVar

from kombu.utils.objects import cached_property


class Thing:
    def __init__(self) -> None:
        self.computed = 0
        self.deleted: list[Any] = []

    @cached_property
    def value(self) -> int:
        """The value."""
        self.computed += 1
        return self.computed * 10


class WithAccessors:
    def __init__(self) -> None:
        self.deleted: list[Any] = []

    @cached_property
    def conn(self) -> str:
        return "default"

    @conn.setter
    def conn(self, value: str) -> str:
        return value.upper()

    @conn.deleter
    def conn(self, value: str) -> None:
        self.deleted.append(value)


def test_computed_once_and_stored() -> None:
    thing = Thing()
    assert thing.value == 10
    assert thing.value == 10
    assert thing.computed == 1
    assert thing.__dict__["value"] == 10


def test_per_instance() -> None:
    a, b = Thing(), Thing()
    assert a.value == 10 and b.value == 10
    assert a.computed == b.computed == 1


def test_assign_and_delete_without_accessors() -> None:
    thing = Thing()
    thing.value = 5
    assert thing.value == 5
    assert thing.computed == 0
    del thing.value
    assert thing.value == 10
    del thing.value
    del thing.value  # nothing cached: does nothing, as kombu's does
    assert thing.computed == 1
    assert "value" not in thing.__dict__
    assert thing.value == 20


def test_class_access_and_metadata() -> None:
    prop = Thing.__dict__["value"]
    assert Thing.value is prop
    assert prop.__doc__ == "The value."
    assert prop.__name__ == "value"
    assert prop.attrname == "value"
    assert prop.__module__ == __name__


def test_setter_transforms_value() -> None:
    obj = WithAccessors()
    assert obj.conn == "default"
    obj.conn = "new"
    assert obj.conn == "NEW"


def test_deleter_gets_the_cached_value() -> None:
    obj = WithAccessors()
    del obj.conn  # never computed: nothing to delete, no error (as kombu)
    assert obj.deleted == []
    assert obj.conn == "default"
    del obj.conn
    assert obj.deleted == ["default"]
    assert obj.conn == "default"


def test_setter_only_and_deleter_only() -> None:
    class SetOnly:
        @cached_property
        def x(self) -> int:
            return 1

        @x.setter
        def x(self, value: int) -> int:
            return value * 2

    class DelOnly:
        seen: ClassVar[list[int]] = []

        @cached_property
        def x(self) -> int:
            return 1

        @x.deleter
        def x(self, value: int) -> None:
            self.seen.append(value)

    s = SetOnly()
    s.x = 4
    assert s.x == 8
    del s.x
    assert s.x == 1
    d = DelOnly()
    d.x = 3
    assert d.x == 3
    del d.x
    assert DelOnly.seen == [3]


def test_name_from_assignment() -> None:
    def compute(self: Any) -> str:
        return "computed"

    class Named:
        alias = cached_property(compute)

    obj = Named()
    assert obj.alias == "computed"
    assert obj.__dict__ == {"alias": "computed"}


def test_delete_never_computed_does_nothing() -> None:
    """Celery's prefork children ``del mailbox.producer_pool`` after fork."""
    thing = Thing()
    del thing.value
    assert thing.computed == 0
    assert thing.value == 10
    assert thing.computed == 1


def test_delete_after_fork_of_a_mailbox_pool() -> None:
    from kombu.pidbox import Mailbox
    from kombu.utils.functional import lazy

    made: list[int] = []
    mailbox = Mailbox("celerymods-unit", producer_pool=lazy(lambda: made.append(1) or "pool"))
    del mailbox.producer_pool  # never evaluated: no error, nothing evaluated
    assert made == []
    assert mailbox.producer_pool == "pool"
    del mailbox.producer_pool
    assert mailbox.producer_pool == "pool"
    assert made == [1, 1]


def test_subclass_instances_set_and_delete() -> None:
    class Sub(Thing):
        pass

    sub = Sub()
    del sub.value
    sub.value = 3
    assert sub.value == 3
    del sub.value
    assert sub.value == 10
