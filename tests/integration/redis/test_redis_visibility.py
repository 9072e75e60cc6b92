"""When acks reach Redis, how held messages stay invisible, and where restores go.

* An ack given in a callback is written before ``drain_events`` returns, so
  an application that stops draining does not get an acked message back.
* While a process holds messages, a thread of its transport refreshes their
  visibility, so a callback that runs longer than ``visibility_timeout``
  keeps its message (and the prefetched ones); a process that dies does not.
* A restored message goes back to the queue it came from, not through its
  exchange again (which copied it into every bound queue).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from helpers.kombu5 import kombu5_python
from helpers.processes import run_python, wait_until
from kombu import Consumer, Exchange, Producer, Queue

pytestmark = pytest.mark.redis

OPTIONS = {"visibility_timeout": 1, "unacked_restore_interval": 0.2}


def _keep_draining(conn: Any, seconds: float) -> None:
    """Drain events on ``conn`` for ``seconds`` (restores run meanwhile)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            conn.drain_events(timeout=min(left, 0.3))
        except TimeoutError:
            pass


def _records(raw: Any, prefix: str) -> tuple[int, int]:
    return raw.hlen(prefix + "unacked"), raw.zcard(prefix + "unacked_index")


def test_ack_in_callback_reaches_redis_before_drain_events_returns(
        connect: Any, names: Any, raw: Any) -> None:
    first, second = connect(**OPTIONS), connect(**OPTIONS)
    queue = Queue(names("q"))
    Producer(first).publish("job", routing_key=queue.name, declare=[queue])
    got: list[Any] = []
    with Consumer(first, [queue], callbacks=[lambda b, m: (got.append(b), m.ack())],
                  prefetch_count=1):
        first.drain_events(timeout=5)
        assert got == ["job"]
        # No more drain_events on this connection from here on.
        wait_until(lambda: _records(raw, connect.prefix) == (0, 0), timeout=0.5,
                   message="the ack reached Redis")
        others: list[Any] = []
        with Consumer(second, [queue], callbacks=[lambda b, m: (others.append(b), m.ack())]):
            _keep_draining(second, 3)  # three visibility timeouts
        assert others == [], "an acknowledged message was delivered again"
    assert _records(raw, connect.prefix) == (0, 0)


def test_acks_of_a_callback_that_raises_are_written_too(connect: Any, names: Any,
                                                        raw: Any) -> None:
    conn = connect(**OPTIONS)
    queue = Queue(names("q"))
    Producer(conn).publish("job", routing_key=queue.name, declare=[queue])

    def on_message(body: Any, message: Any) -> None:
        message.ack()
        raise RuntimeError("the application failed after acking")

    with Consumer(conn, [queue], callbacks=[on_message]):
        with pytest.raises(RuntimeError, match="after acking"):
            conn.drain_events(timeout=5)
        wait_until(lambda: _records(raw, connect.prefix) == (0, 0), timeout=0.5,
                   message="the ack reached Redis")


def test_ack_outside_drain_events_is_written_at_once(connect: Any, names: Any, raw: Any) -> None:
    first, second = connect(**OPTIONS), connect(**OPTIONS)
    queue = Queue(names("q"))
    Producer(first).publish("job", routing_key=queue.name, declare=[queue])
    got: list[Any] = []
    with Consumer(first, [queue], callbacks=[lambda b, m: got.append(m)], prefetch_count=1):
        first.drain_events(timeout=5)
        assert _records(raw, connect.prefix) == (1, 1)
        got[0].ack()  # after drain_events returned, in the application's own time
        assert _records(raw, connect.prefix) == (0, 0)
        others: list[Any] = []
        with Consumer(second, [queue], callbacks=[lambda b, m: others.append(b)]):
            _keep_draining(second, 2.5)
        assert others == []


@pytest.mark.timeout(60)
def test_a_callback_longer_than_visibility_timeout_keeps_its_messages(
        connect: Any, names: Any, raw: Any) -> None:
    worker, other = connect(**OPTIONS), connect(**OPTIONS)
    queue = Queue(names("q"))
    producer = Producer(worker)
    for i in range(3):
        producer.publish(i, routing_key=queue.name, declare=[queue])
    seen: list[tuple[str, Any, bool]] = []
    stop = threading.Event()

    def slow(body: Any, message: Any) -> None:
        seen.append(("worker", body, bool(message.delivery_info.get("redelivered"))))
        if body == 0:
            # All three are fetched by now; another consumer drains meanwhile.
            thread.start()
            time.sleep(3.5)  # 3.5 visibility timeouts, without drain_events
        message.ack()

    def run_other() -> None:
        def on_message(body: Any, message: Any) -> None:
            seen.append(("other", body, bool(message.delivery_info.get("redelivered"))))
            message.ack()

        with Consumer(other, [queue], callbacks=[on_message]):
            while not stop.is_set():
                try:
                    other.drain_events(timeout=0.2)
                except TimeoutError:
                    pass

    thread = threading.Thread(target=run_other)
    with Consumer(worker, [queue], callbacks=[slow], prefetch_count=3):
        try:
            deadline = time.monotonic() + 20
            while len(seen) < 3:
                assert time.monotonic() < deadline
                try:
                    worker.drain_events(timeout=1)
                except TimeoutError:
                    pass
            time.sleep(1.5)  # more than a visibility timeout for late restores
        finally:
            stop.set()
            thread.join(10)
    assert not thread.is_alive()
    assert seen == [("worker", 0, False), ("worker", 1, False), ("worker", 2, False)]
    assert _records(raw, connect.prefix) == (0, 0)


def test_the_refresher_runs_only_while_messages_are_held(connect: Any, names: Any) -> None:
    conn = connect(**OPTIONS)
    refresher = conn.transport.refresher
    queue = Queue(names("q"))
    Producer(conn).publish("job", routing_key=queue.name, declare=[queue])
    assert not refresher.running
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: got.append(m)]):
        conn.drain_events(timeout=5)
        assert refresher.running
        time.sleep(0.6)  # two refresh periods: still held, still running
        assert refresher.running
        got[0].ack()
        wait_until(lambda: not refresher.running, timeout=2,
                   message="the refresher stopped once nothing was held")
    Producer(conn).publish("again", routing_key=queue.name)
    message = queue(conn.default_channel).get()
    assert message is not None and refresher.running  # basic_get holds one too
    conn.close()
    assert not refresher.running  # close stops it


def test_a_dead_process_gets_no_refresh(connect: Any, names: Any, redis_url: str,
                                        raw: Any) -> None:
    """A consumer killed (SIGKILL) while it holds a message: it comes back."""
    queue = Queue(names("q"))
    conn = connect(**OPTIONS)
    Producer(conn).publish("job", routing_key=queue.name, declare=[queue])
    proc = _hold_in_a_process(redis_url, connect.prefix, queue)
    try:
        end = time.monotonic() + 2.5
        while time.monotonic() < end:  # a restorer at work: the live holder keeps it
            conn.default_channel.restorer.restore_visible()
            time.sleep(0.2)
        assert raw.llen(connect.prefix + queue.name) == 0
        assert _records(raw, connect.prefix) == (1, 1)
    finally:
        _kill(proc)
    got: list[Any] = []
    with Consumer(conn, [queue], callbacks=[lambda b, m: (got.append(m), m.ack())]):
        deadline = time.monotonic() + 10
        while not got:
            assert time.monotonic() < deadline, "the dead consumer's message did not come back"
            try:
                conn.drain_events(timeout=0.5)
            except TimeoutError:
                pass
    assert got[0].payload == "job" and got[0].delivery_info["redelivered"] is True


#: Consumes one message of a queue without acking it, then waits to be killed.
_HOLDER = textwrap.dedent("""
    import json, sys, time
    from kombu import Connection, Consumer, Queue
    url, prefix, name, options = sys.argv[1:5]
    options = dict(json.loads(options), global_keyprefix=prefix)
    conn = Connection(url, transport_options=options)
    got = []
    with Consumer(conn, [Queue(name)], callbacks=[lambda b, m: got.append(m)],
                  prefetch_count=1):
        conn.drain_events(timeout=10)
        print("holding", flush=True)
        time.sleep(60)
""")


def _two_queues_on_a_topic(conn: Any, names: Any) -> tuple[Exchange, Queue, Queue]:
    exchange = Exchange(names("tx"), "topic")
    qa = Queue(names("qa"), exchange, routing_key="x.#")
    qb = Queue(names("qb"), exchange, routing_key="x.#")
    for queue in (qa, qb):
        queue(conn.default_channel).declare()
    Producer(conn, exchange=exchange).publish("m", routing_key="x.y")
    return exchange, qa, qb


def test_a_dead_consumers_message_goes_back_to_its_queue_only(
        connect: Any, names: Any, redis_url: str, raw: Any) -> None:
    conn = connect(**OPTIONS)
    _, qa, qb = _two_queues_on_a_topic(conn, names)
    prefix = connect.prefix
    assert raw.llen(prefix + qa.name) == raw.llen(prefix + qb.name) == 1
    _kill(_hold_in_a_process(redis_url, prefix, qa))
    assert raw.llen(prefix + qa.name) == 0
    time.sleep(1.2)  # past the visibility timeout
    conn.default_channel.restorer.restore_visible()
    assert raw.llen(prefix + qa.name) == 1
    assert raw.llen(prefix + qb.name) == 1, "the restore copied the message into qb"
    assert _records(raw, prefix) == (0, 0)
    [restored] = raw.lrange(prefix + qa.name, 0, -1)
    info = json.loads(restored)["properties"]["delivery_info"]
    assert info["exchange"] == qa.exchange.name and info["routing_key"] == "x.y"
    assert info["redelivered"] is True


KOMBU_RESTORE = textwrap.dedent("""
    import sys
    from kombu import Connection
    url, prefix = sys.argv[1:3]
    conn = Connection(url, transport_options={"global_keyprefix": prefix,
                                              "visibility_timeout": 1})
    conn.default_channel.qos.restore_visible(num=100, interval=1)
    conn.close()
""")


def _die_and_let_kombu_restore(dead: Any, redis_url: str, prefix: str) -> None:
    """``dead`` "dies": its sockets drop behind kombu's back and it forgets its
    messages, so nothing here refreshes, restores or acks them; then real
    kombu 5.x restores what is overdue."""
    dead.default_channel._disconnect()
    dead.default_channel.qos._delivered.clear()
    time.sleep(1.2)
    run_python(KOMBU_RESTORE, redis_url, prefix, python=kombu5_python())


def test_kombu_restores_our_records_to_their_queue_only(connect: Any, names: Any,
                                                        redis_url: str, raw: Any) -> None:
    """Real kombu 5.x's restore_visible reads our record: back to qa, not qb."""
    conn = connect(**OPTIONS)
    _, qa, qb = _two_queues_on_a_topic(conn, names)
    prefix = connect.prefix
    dead = connect(**OPTIONS)
    message = qa(dead.default_channel).get()
    assert message is not None and message.payload == "m"
    _die_and_let_kombu_restore(dead, redis_url, prefix)
    assert raw.llen(prefix + qa.name) == 1
    assert raw.llen(prefix + qb.name) == 1
    assert _records(raw, prefix) == (0, 0)
    [restored] = raw.lrange(prefix + qa.name, 0, -1)
    # Recorded under tag + '@' + queue; the message keeps its published tag.
    assert message.delivery_tag == \
        json.loads(restored)["properties"]["delivery_tag"] + "@" + qa.name


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` (a holder) and reap it."""
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _hold_in_a_process(redis_url: str, prefix: str, queue: Queue) -> subprocess.Popen:
    """A process that consumed one message of ``queue`` and holds it unacked."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, redis_url, prefix, queue.name,
                             json.dumps(OPTIONS)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "holding":
        _kill(proc)
    assert line == "holding"
    return proc


def test_copies_held_by_two_consumers_have_a_record_each(
        connect: Any, names: Any, redis_url: str, raw: Any) -> None:
    """One publish routed to qa and qb: an ack of qa's copy leaves qb's record,
    so qb's copy comes back when its consumer dies (kombu 5.x overwrote it)."""
    conn = connect(**OPTIONS)
    _, qa, qb = _two_queues_on_a_topic(conn, names)
    prefix = connect.prefix
    proc = _hold_in_a_process(redis_url, prefix, qb)
    try:
        message = qa(conn.default_channel).get()
        assert message is not None and message.payload == "m"
        assert _records(raw, prefix) == (2, 2)
        message.ack()
        assert _records(raw, prefix) == (1, 1), "the ack of qa's copy removed qb's record"
    finally:
        _kill(proc)
    got: list[Any] = []
    with Consumer(conn, [qa, qb], callbacks=[lambda b, m: (got.append(m), m.ack())]):
        deadline = time.monotonic() + 10
        while not got:
            assert time.monotonic() < deadline, "the dead consumer's copy did not come back"
            _keep_draining(conn, 0.3)
        _keep_draining(conn, 1.5)
    assert [(m.payload, m.delivery_info["redelivered"]) for m in got] == [("m", True)]
    assert got[0]._source_queue == qb.name
    assert _records(raw, prefix) == (0, 0)


def test_close_restores_both_copies_one_consumer_held(connect: Any, names: Any,
                                                      raw: Any) -> None:
    conn = connect(**OPTIONS)
    _, qa, qb = _two_queues_on_a_topic(conn, names)
    prefix = connect.prefix
    worker = connect(**OPTIONS)
    got: list[Any] = []
    with Consumer(worker, [qa, qb], callbacks=[lambda b, m: got.append(m)], prefetch_count=2):
        deadline = time.monotonic() + 10
        while len(got) < 2:
            assert time.monotonic() < deadline
            _keep_draining(worker, 0.2)
        assert len({m.delivery_tag for m in got}) == 2
        assert _records(raw, prefix) == (2, 2)
    worker.close()  # nothing acked: both copies go back at once
    assert raw.llen(prefix + qa.name) == raw.llen(prefix + qb.name) == 1
    assert _records(raw, prefix) == (0, 0)
    for queue in (qa, qb):
        [restored] = raw.lrange(prefix + queue.name, 0, -1)
        props = json.loads(restored)["properties"]
        assert props["delivery_info"]["redelivered"] is True
        assert props["delivery_tag"] == got[0].delivery_tag.split("@")[0]


def test_acking_both_copies_leaves_no_record_and_no_redelivery(connect: Any, names: Any,
                                                                raw: Any) -> None:
    conn = connect(**OPTIONS)
    _, qa, qb = _two_queues_on_a_topic(conn, names)
    got: list[Any] = []
    with Consumer(conn, [qa, qb], callbacks=[lambda b, m: (got.append(m), m.ack())],
                  prefetch_count=2):
        deadline = time.monotonic() + 10
        while len(got) < 2:
            assert time.monotonic() < deadline
            _keep_draining(conn, 0.2)
        _keep_draining(conn, 2.5)  # past two visibility timeouts, restores running
    assert sorted(m._source_queue for m in got) == sorted([qa.name, qb.name])
    assert len({m.delivery_tag for m in got}) == 2
    assert _records(raw, connect.prefix) == (0, 0)


def test_kombu_restores_both_copies_of_a_dead_consumer(connect: Any, names: Any,
                                                       redis_url: str, raw: Any) -> None:
    """Real kombu 5.x restores the record of a second copy too, to its queue."""
    conn = connect(**OPTIONS)
    _, qa, qb = _two_queues_on_a_topic(conn, names)
    prefix = connect.prefix
    dead = connect(**OPTIONS)
    for queue in (qa, qb):
        message = queue(dead.default_channel).get()
        assert message is not None and message.payload == "m"
    assert _records(raw, prefix) == (2, 2)
    _die_and_let_kombu_restore(dead, redis_url, prefix)
    assert raw.llen(prefix + qa.name) == raw.llen(prefix + qb.name) == 1
    assert _records(raw, prefix) == (0, 0)


def test_a_refresh_after_selection_keeps_the_message(connect: Any, names: Any,
                                                     raw: Any) -> None:
    """The restore moves a tag only if its index score is still overdue
    (a holder's refresh between the selection and the restore wins)."""
    conn = connect(visibility_timeout=30)
    queue = Queue(names("q"))
    Producer(conn).publish("held", routing_key=queue.name, declare=[queue])
    channel = conn.default_channel
    message = queue(channel).get()
    assert message is not None
    prefix = connect.prefix
    raw.zadd(prefix + "unacked_index", {message.delivery_tag: time.time() - 60})
    tags, ceiling = channel.restorer.overdue_tags(100)
    assert tags == [message.delivery_tag]
    channel.refresh_held(tags)  # the holder is alive after all
    assert channel.restorer.restore_tags(tags, ceiling=ceiling) == 0
    assert raw.llen(prefix + queue.name) == 0
    assert _records(raw, prefix) == (1, 1)
    # Still overdue at restore time: it moves.
    raw.zadd(prefix + "unacked_index", {message.delivery_tag: time.time() - 60})
    tags, ceiling = channel.restorer.overdue_tags(100)
    assert channel.restorer.restore_tags(tags, ceiling=ceiling) == 1
    assert raw.llen(prefix + queue.name) == 1
    assert _records(raw, prefix) == (0, 0)


def test_a_mixed_fleet_never_shares_a_record_field_with_kombu(connect: Any, names: Any,
                                                             redis_url: str, raw: Any) -> None:
    """Our record is tag@queue, kombu 5.x's the bare tag: neither overwrites
    nor acks away the other's (one publish, a copy consumed by each)."""
    conn = connect(**OPTIONS)
    exchange, qa, qb = _two_queues_on_a_topic(conn, names)
    prefix = connect.prefix
    ours = qa(conn.default_channel).get()
    assert ours is not None and ours.payload == "m"
    run_python(textwrap.dedent("""
        import os, sys
        from kombu import Connection, Queue
        url, prefix, name = sys.argv[1:4]
        conn = Connection(url, transport_options={"global_keyprefix": prefix})
        message = Queue(name)(conn.default_channel).get()
        assert message is not None and message.payload == "m"
        sys.stdout.flush()
        os._exit(0)  # dies holding it: its record stays
    """), redis_url, prefix, qb.name, python=kombu5_python())
    fields = {f.decode() for f in raw.hkeys(prefix + "unacked")}
    [bare] = [f for f in fields if "@" not in f]
    assert fields == {bare, f"{bare}@{qa.name}"}
    assert ours.delivery_tag == f"{bare}@{qa.name}"
    kombus = json.loads(raw.hget(prefix + "unacked", bare))
    assert kombus[1:] == [exchange.name, "x.y"]  # kombu's own record, intact
    ours.ack()
    assert {f.decode() for f in raw.hkeys(prefix + "unacked")} == {bare}
    assert raw.zscore(prefix + "unacked_index", bare) is not None
    raw.hdel(prefix + "unacked", bare)
    raw.zrem(prefix + "unacked_index", bare)


#: Visibility timeout, the time a message spends between the buffer and
#: qos._delivered (several refresher periods), and a callback's duration.
GAP_OPTIONS = {"visibility_timeout": 0.6, "unacked_restore_interval": 0.05}
GAP = 0.5
LONG_CALLBACK = 1.5


def _slow_message_transport() -> type:
    """The Redis transport whose Message takes GAP seconds to construct: the
    window between the buffer (or the pop) and qos._delivered, made wide."""
    from kombu_redis.transport import Channel, Message, Transport

    class SlowMessage(Message):
        __slots__ = ()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(GAP)
            super().__init__(*args, **kwargs)

    class SlowChannel(Channel):
        Message = SlowMessage

    class SlowTransport(Transport):
        Channel = SlowChannel

    return SlowTransport


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["consume", "get"])
def test_a_message_being_delivered_stays_held(connect: Any, names: Any, raw: Any,
                                             redis_url: str, how: str) -> None:
    """The refresher counts the message between the buffer and qos as held:
    it keeps running, so a callback longer than visibility_timeout keeps
    its message though a restorer runs all along (several rounds)."""
    from kombu import Connection
    prefix = connect.prefix
    options = {**GAP_OPTIONS, "global_keyprefix": prefix}
    conn = Connection(redis_url, transport=_slow_message_transport(), transport_options=options)
    restorer = connect(**GAP_OPTIONS)
    queue = Queue(names("q"))
    producer = Producer(connect(**GAP_OPTIONS))
    stop = threading.Event()

    def restore() -> None:
        channel = restorer.default_channel
        while not stop.wait(0.05):
            channel.restorer.restore_visible()

    thread = threading.Thread(target=restore, daemon=True)
    seen: list[tuple[Any, bool]] = []

    def on_message(body: Any, message: Any) -> None:
        seen.append((body, bool(message.delivery_info.get("redelivered"))))
        time.sleep(LONG_CALLBACK)  # longer than visibility_timeout
        message.ack()

    rounds = 3
    try:
        queue(conn.default_channel).declare()
        thread.start()
        if how == "consume":
            with Consumer(conn, [queue], callbacks=[on_message], prefetch_count=1):
                for i in range(rounds):
                    producer.publish(i, routing_key=queue.name)
                    conn.drain_events(timeout=10)
                    _keep_draining(conn, 0.3)  # a redelivery would arrive meanwhile
        else:
            for i in range(rounds):
                producer.publish(i, routing_key=queue.name)
                message = queue(conn.default_channel).get()
                assert message is not None
                on_message(message.payload, message)
                assert raw.llen(prefix + queue.name) == 0
    finally:
        stop.set()
        thread.join(10)
        conn.close()
    assert seen == [(i, False) for i in range(rounds)]
    assert raw.llen(prefix + queue.name) == 0
    assert _records(raw, prefix) == (0, 0)
