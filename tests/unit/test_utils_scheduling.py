"""kombu.utils.scheduling: FairCycle and the cycle strategies."""

from __future__ import annotations

from collections.abc import Callable
from queue import Empty
from typing import Any

import pytest
from kombu.utils.scheduling import (
    FairCycle,
    cycle_by_name,
    priority_cycle,
    round_robin_cycle,
    sorted_cycle,
)


class Queues:
    """Named lists of messages; ``get`` raises Empty for an empty one."""

    def __init__(self, **queues: list[Any]) -> None:
        self.queues = queues
        self.tried: list[str] = []

    def get(self, name: str, callback: Callable[[Any], Any], **kwargs: Any) -> Any:
        self.tried.append(name)
        if not self.queues[name]:
            raise Empty(name)
        return callback((name, self.queues[name].pop(0), kwargs))


def test_round_robin_between_resources() -> None:
    q = Queues(a=[1, 2, 3], b=[4, 5, 6])
    cycle = FairCycle(q.get, ["a", "b"], Empty)
    got = [cycle.get(lambda m: m[:2]) for _ in range(4)]
    assert got == [("a", 1), ("b", 4), ("a", 2), ("b", 5)]


def test_skips_empty_resources() -> None:
    q = Queues(a=[], b=[], c=[7])
    cycle = FairCycle(q.get, ["a", "b", "c"], Empty)
    assert cycle.get(lambda m: m[1]) == 7
    assert q.tried == ["a", "b", "c"]


def test_all_empty_reraises_the_resource_error() -> None:
    q = Queues(a=[], b=[])
    cycle = FairCycle(q.get, ["a", "b"], Empty)
    with pytest.raises(Empty) as info:
        cycle.get(lambda m: m)
    assert info.value.args == ("b",)  # the last resource's own exception
    assert q.tried == ["a", "b"]


def test_each_resource_tried_once_per_call() -> None:
    q = Queues(a=[], b=[], c=[])
    cycle = FairCycle(q.get, ["a", "b", "c"], Empty)
    for _ in range(3):
        with pytest.raises(Empty):
            cycle.get(lambda m: m)
    assert len(q.tried) == 9


def test_no_resources_raises_predicate() -> None:
    cycle = FairCycle(lambda *a: None, [], Empty)
    with pytest.raises(Empty):
        cycle.get(lambda m: m)


def test_other_errors_propagate() -> None:
    def fun(resource: str, callback: Any) -> Any:
        raise KeyError(resource)

    cycle = FairCycle(fun, ["a", "b"], Empty)
    with pytest.raises(KeyError):
        cycle.get(lambda m: m)


def test_kwargs_are_passed() -> None:
    q = Queues(a=[1])
    cycle = FairCycle(q.get, ["a"], Empty)
    assert cycle.get(lambda m: m, timeout=3) == ("a", 1, {"timeout": 3})


def test_resources_list_is_used_live() -> None:
    resources = ["a"]
    q = Queues(a=[1, 2], b=[3])
    cycle = FairCycle(q.get, resources, Empty)
    assert cycle.get(lambda m: m[1]) == 1
    resources.append("b")
    assert cycle.get(lambda m: m[1]) == 3
    resources.remove("a")
    resources.remove("b")
    with pytest.raises(Empty):
        cycle.get(lambda m: m)


def test_resources_shrink_during_get() -> None:
    resources = ["a", "b", "c"]

    def fun(resource: str, callback: Any) -> Any:
        resources.clear()
        raise Empty(resource)

    cycle = FairCycle(fun, resources, Empty)
    cycle.pos = 2
    with pytest.raises(Empty):
        cycle.get(lambda m: m)


def test_repr_and_close() -> None:
    cycle = FairCycle(lambda *a: None, ["a", "b"], Empty)
    assert repr(cycle) == "<FairCycle: 0/2 ['a', 'b']>"
    cycle.close()


def test_round_robin_cycle() -> None:
    cycle = round_robin_cycle(["a", "b", "c"])
    assert cycle.consume(2) == ["a", "b"]
    assert cycle.rotate("a") == "a"
    assert cycle.items == ["b", "c", "a"]
    cycle.rotate("missing")
    assert cycle.items == ["b", "c", "a"]
    items = cycle.items
    cycle.update(["x"])
    assert cycle.items is items and items == ["x"]
    assert round_robin_cycle().items == []


def test_priority_cycle_keeps_order() -> None:
    cycle = priority_cycle(["a", "b"])
    cycle.rotate("a")
    assert cycle.consume(5) == ["a", "b"]


def test_sorted_cycle() -> None:
    cycle = sorted_cycle(["c", "a", "b"])
    assert cycle.consume(2) == ["a", "c"]
    assert cycle.consume(3) == ["a", "b", "c"]


def test_cycle_by_name() -> None:
    assert cycle_by_name("round_robin") is round_robin_cycle
    assert cycle_by_name("priority") is priority_cycle
    assert cycle_by_name("sorted") is sorted_cycle
    assert cycle_by_name("kombu.utils.scheduling:sorted_cycle") is sorted_cycle
    assert cycle_by_name(priority_cycle) is priority_cycle
