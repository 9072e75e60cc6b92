"""The delivery guarantees of kombu-redis, part by part, without a broker.

The restorer, the refresher and the ack pipeline are given their
collaborators: an in-process store of the few commands they use
(``helpers.fakeredis``), which can also cut connections or go away.  The
same guarantees are tested against a real Redis in
``tests/integration/redis``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest

redis = pytest.importorskip("redis", reason="kombu-redis needs redis-py (pip install redis)")

from helpers.fakeredis import FakeClient, FakeStore  # noqa: E402
from kombu_redis.acks import AckPipeline  # noqa: E402
from kombu_redis.keys import KeySchema, record_field  # noqa: E402
from kombu_redis.link import Link  # noqa: E402
from kombu_redis.refresh import Refresher, refresh_commands  # noqa: E402
from kombu_redis.restore import Restorer  # noqa: E402

KEYS = KeySchema("t:")


def _envelope(body: str, tag: str) -> dict[str, Any]:
    return {"body": body, "headers": {}, "content-type": "text/plain",
            "properties": {"delivery_tag": tag, "body_encoding": "utf-8",
                           "delivery_info": {"exchange": "", "routing_key": "q"}}}


def _record(store: FakeStore, tag: str, queue: str, at: float) -> str:
    """Record a consumed message as the pop script does; its field."""
    field = record_field(tag, queue)
    payload = json.dumps(_envelope(f"body-{tag}", tag))
    store.command("HSET", KEYS.unacked, field, f'[{payload}, "", {json.dumps(queue)}]')
    store.command("ZADD", KEYS.index, repr(at), field)
    return field


def _restorer(store: FakeStore, visibility_timeout: float = 60) -> Restorer:
    client = FakeClient(store)
    return Restorer(lambda: client, KEYS, route=lambda exchange, rk: [rk],
                    priority=lambda payload: 0, visibility_timeout=visibility_timeout,
                    batch=2)


def _queue(store: FakeStore, name: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in store.lists.get(KEYS.queue_key(name), ())]


class Holder:
    """A live consumer holding recorded messages (what the refresher sees)."""

    def __init__(self, store: FakeStore, tags: list[str]) -> None:
        self.store = store
        self.tags = tags
        self.visibility_timeout = 60.0

    def held_tags(self) -> list[str]:
        return list(self.tags)

    def refresh_held(self, tags: list[str]) -> None:
        for command in refresh_commands(KEYS.index, tags):
            self.store.command(*command)


def test_messages_of_a_holder_that_died_are_restored_all_flagged() -> None:
    store = FakeStore()
    old = time.time() - 120
    fields = [_record(store, f"m{i}", "q", old) for i in range(5)]
    _restorer(store).restore_visible()
    restored = _queue(store, "q")
    # All five, batch after batch (batch=2), each once, flagged as redelivered.
    assert sorted(m["properties"]["delivery_tag"] for m in restored) == [f"m{i}" for i in range(5)]
    assert all(m["properties"]["delivery_info"]["redelivered"] for m in restored)
    assert all(m["headers"]["redelivered"] for m in restored)
    assert not store.hashes[KEYS.unacked] and not store.zsets[KEYS.index]
    assert KEYS.mutex not in store.strings, "the restorer kept the lock"
    assert set(fields) == {f"m{i}@q" for i in range(5)}


def test_a_second_restorer_and_a_late_ack_never_duplicate() -> None:
    store = FakeStore()
    field = _record(store, "m", "q", time.time() - 120)
    restorer = _restorer(store)
    tags, ceiling = restorer.overdue_tags(10)
    assert tags == [field]
    assert restorer.restore_tags(tags, ceiling=ceiling) == 1
    assert restorer.restore_tags(tags, ceiling=ceiling) == 0  # a second restorer: nothing
    assert len(_queue(store, "q")) == 1


def test_a_held_lock_stops_other_restorers() -> None:
    store = FakeStore()
    _record(store, "m", "q", time.time() - 120)
    store.command("SET", KEYS.mutex, "someone else")
    _restorer(store).restore_visible()
    assert _queue(store, "q") == [] and store.strings[KEYS.mutex] == b"someone else"


def test_the_refresher_keeps_the_messages_of_a_live_holder() -> None:
    store = FakeStore()
    old = time.time() - 120
    held = _record(store, "held", "q", old)
    dead = _record(store, "dead", "q", old)
    holder = Holder(store, [held])
    refresher = Refresher(lambda: [holder])
    work = refresher.work()
    assert work == [(holder, [held])]
    assert not refresher.refresh_once(work)
    _restorer(store).restore_visible()
    assert [m["properties"]["delivery_tag"] for m in _queue(store, "q")] == ["dead"]
    assert set(store.hashes[KEYS.unacked]) == {held}
    assert dead not in store.zsets[KEYS.index]


def test_a_refresh_between_selection_and_restore_wins() -> None:
    store = FakeStore()
    field = _record(store, "m", "q", time.time() - 120)
    restorer = _restorer(store)
    tags, ceiling = restorer.overdue_tags(10)
    Holder(store, tags).refresh_held(tags)  # the holder is alive after all
    assert restorer.restore_tags(tags, ceiling=ceiling) == 0
    assert _queue(store, "q") == [] and field in store.hashes[KEYS.unacked]


def test_refresh_never_recreates_an_acked_record() -> None:
    store = FakeStore()
    Holder(store, ["gone@q"]).refresh_held(["gone@q"])
    assert "gone@q" not in store.zsets.get(KEYS.index, {})


def test_the_refresher_stops_when_nothing_is_held_or_its_transport_is_gone() -> None:
    assert Refresher(lambda: [Holder(FakeStore(), [])]).work() is None
    assert Refresher(lambda: None).work() is None


def test_a_failing_refresh_is_reported_and_tried_again(caplog: Any) -> None:
    class Broken(Holder):
        def refresh_held(self, tags: list[str]) -> None:
            raise ConnectionError("gone")

    refresher = Refresher(list)
    with caplog.at_level(logging.WARNING, logger="kombu.transport.redis"):
        assert refresher.refresh_once([(Broken(FakeStore(), ["x"]), ["x"])]) is True
    assert "Could not refresh" in caplog.text


def _pipeline(store: FakeStore) -> tuple[AckPipeline, Link]:
    link = Link(store.connection)
    link.open(None, None)
    client = FakeClient(store)
    return AckPipeline(link, KEYS, lambda: client, visibility_timeout=60), link


def test_acks_of_a_callback_are_written_then_confirmed_on_close() -> None:
    store = FakeStore()
    fields = [_record(store, f"m{i}", "q", time.time()) for i in range(3)]
    acks, link = _pipeline(store)
    acks.callback_thread = threading.get_ident()
    for field in fields:
        acks.ack(field)
    assert acks.pending == fields
    acks.send()
    assert link.owed == 2 and not acks.pending  # ZREM + HDEL, replies not read yet
    acks.settle(timeout=1)
    assert link.owed == 0
    assert not store.hashes[KEYS.unacked] and not store.zsets[KEYS.index]


def test_acks_whose_connection_was_cut_are_sent_again_on_close() -> None:
    store = FakeStore()
    field = _record(store, "m", "q", time.time())
    acks, link = _pipeline(store)
    acks.pending.append(field)
    # Written, then the connection is cut before the reply is read; the
    # fake applied the commands, so take the record back to see the resend.
    acks.send()
    store.cut()
    _record(store, "m", "q", time.time())
    acks.settle(timeout=1)
    assert not store.hashes[KEYS.unacked], "the acks were not sent again"
    resent = [c for c in store.commands if c[:2] == ("HDEL", KEYS.unacked)]
    assert len(resent) == 2


def test_acks_a_cut_connection_lost_are_pending_again_for_the_next_command() -> None:
    store = FakeStore()
    acks, link = _pipeline(store)
    acks.pending.append("m@q")
    acks.send()
    store.cut()
    with pytest.raises(redis.ConnectionError):
        link.call("PING")  # finds the connection lost: the unconfirmed acks return
    assert acks.pending == ["m@q"] and link.owed == 0
    assert link.call("PING") == b"PONG"  # the next command reconnects


def test_acks_that_cannot_be_settled_in_time_are_logged(caplog: Any) -> None:
    store = FakeStore()
    field = _record(store, "m", "q", time.time())
    acks, link = _pipeline(store)
    store.down = True
    acks.pending.append(field)
    with caplog.at_level(logging.WARNING, logger="kombu.transport.redis"):
        acks.settle(timeout=0.2)
    assert "Could not confirm 1 ack(s)" in caplog.text
    assert field in store.hashes[KEYS.unacked]  # redelivered after visibility_timeout
    assert not acks.pending


def test_acks_outside_callbacks_go_through_the_pool_at_once() -> None:
    store = FakeStore()
    field = _record(store, "m", "q", time.time())
    acks, link = _pipeline(store)
    acks.ack(field)  # not the callback thread
    assert not acks.pending and not store.hashes[KEYS.unacked]


def test_a_fetch_carries_at_most_one_chunk_of_acks() -> None:
    from kombu_redis.acks import ACK_CHUNK

    store = FakeStore()
    acks, link = _pipeline(store)
    acks.pending.extend(["a", "b"])
    assert acks.take() == ["a", "b"] and not acks.pending
    acks.pending.extend(str(i) for i in range(ACK_CHUNK + 1))
    assert acks.take() == []  # sent on their own, confirmed
    assert [c[0] for c in store.commands[-2:]] == ["ZREM", "HDEL"]
