"""Observability hooks on memory://: events, arguments, registration, failures, plugins."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import kombu
import pytest
from helpers import run_python
from helpers.observers import CYCLE_COUNTS, EventRecorder, message_cycle, recording
from kombu import Connection, Consumer, Exchange, Producer, Queue, observability
from kombu.exceptions import NotBoundError


@pytest.fixture
def entities(unique):  # type: ignore[no-untyped-def]
    exchange = Exchange(unique("x"), "direct")
    return exchange, Queue(unique("q"), exchange, routing_key="k")


def test_a_publish_consume_cycle_counts_every_event(entities) -> None:  # type: ignore[no-untyped-def]
    exchange, queue = entities
    with recording() as events, Connection("memory://") as conn:
        seen = message_cycle(conn, exchange, queue)
    assert seen == [(0, False), (1, False), (1, True), (2, False)]
    assert events.counts() == {**CYCLE_COUNTS, "kombu_connection_established": 1}
    published = events.of("kombu_before_publish")
    assert {(e["exchange"], e["routing_key"]) for e in published} == {(exchange.name, "k")}
    assert all(e["headers"] == {"app": "tests"} and e["body_size"] == len(b'{"n": 0}')
               and e["content_type"] == "application/json" for e in published)
    assert all(e["connection"] is conn for e in published)
    delivered = events.of("kombu_message_delivered")
    assert [e["queue"] for e in delivered] == [queue.name] * 4
    assert all(e["exchange"] == exchange.name and e["routing_key"] == "k"
               and e["headers"]["app"] == "tests" for e in delivered)
    assert [e["exc"] for e in events.of("kombu_message_handled")] == [None] * 4
    started = events.of("kombu_consumer_started")[0]
    assert started["queue"] == queue.name and started["no_ack"] is False
    assert events.of("kombu_consumer_cancelled")[0]["consumer_tag"] == started["consumer_tag"]
    acked = events.of("kombu_message_acked")
    assert [e["delivery_tag"] for e in acked] == [e["message"].delivery_tag for e in acked]
    assert events.of("kombu_connection_established")[0]["url"] == "memory://localhost//"


def test_events_come_in_order_for_one_message(entities) -> None:  # type: ignore[no-untyped-def]
    exchange, queue = entities
    with Connection("memory://") as conn, recording() as events:
        Producer(conn).publish("hi", exchange=exchange, routing_key="k", declare=[queue])
        with Consumer(conn, [queue], callbacks=[lambda body, m: m.ack()]):
            conn.drain_events(timeout=2)
    assert [name for name, _ in events.events] == [
        # The producer connects (lazily) while publishing.
        "kombu_before_publish", "kombu_connection_established", "kombu_after_publish",
        "kombu_consumer_started", "kombu_message_delivered", "kombu_message_acked",
        "kombu_message_handled", "kombu_consumer_cancelled"]


def test_headers_added_by_a_hook_travel_and_the_callers_dict_is_kept(entities) -> None:  # type: ignore[no-untyped-def]
    exchange, queue = entities

    class Injector:
        @kombu.hookimpl
        def kombu_before_publish(self, headers):  # type: ignore[no-untyped-def]
            headers["trace"] = "abc"

    mine = {"app": "x"}
    with Connection("memory://") as conn, recording() as events:
        kombu.register_plugin(Injector(), name="injector")
        try:
            Producer(conn).publish("hi", exchange=exchange, routing_key="k", declare=[queue],
                                   headers=mine)
        finally:
            kombu.unregister_plugin("injector")
        message = queue(conn.default_channel).get(no_ack=True)
    assert mine == {"app": "x"}
    assert message.headers == {"app": "x", "trace": "abc"}
    # Queue.get (basic_get) is a delivery too, with no consumer.
    fetched = events.of("kombu_message_delivered")
    assert len(fetched) == 1 and fetched[0]["consumer"] is None
    assert fetched[0]["queue"] == queue.name and fetched[0]["headers"]["trace"] == "abc"


def test_simple_queue_fetch_and_no_ack_messages(unique) -> None:  # type: ignore[no-untyped-def]
    with Connection("memory://") as conn, recording() as events:
        with conn.SimpleQueue(unique("q")) as q:
            q.put({"a": 1})
            q.get(timeout=1).ack()
        with conn.SimpleBuffer(unique("q")) as buf:
            buf.put({"b": 2})
            buf.get(timeout=1).ack()  # delivered without ack: nothing to acknowledge
    assert events.count("kombu_message_delivered") == 2
    assert events.count("kombu_message_acked") == 1


def test_a_failed_publish_reports_its_error() -> None:
    with recording() as events:
        with pytest.raises(NotBoundError):
            Producer(None).publish("x", routing_key="r")
    (after,) = events.of("kombu_after_publish")
    assert isinstance(after["exc"], NotBoundError)
    assert events.of("kombu_before_publish")[0]["connection"] is None


def test_a_callback_error_is_reported_and_still_raised(entities) -> None:  # type: ignore[no-untyped-def]
    exchange, queue = entities

    def boom(body, message):  # type: ignore[no-untyped-def]
        raise RuntimeError("callback failed")

    with Connection("memory://") as conn, recording() as events:
        Producer(conn).publish("x", exchange=exchange, routing_key="k", declare=[queue])
        with Consumer(conn, [queue], callbacks=[boom]):
            with pytest.raises(RuntimeError, match="callback failed"):
                conn.drain_events(timeout=2)
    (handled,) = events.of("kombu_message_handled")
    assert isinstance(handled["exc"], RuntimeError)


def test_a_raising_observer_is_logged_and_messaging_goes_on(entities, caplog) -> None:  # type: ignore[no-untyped-def]
    exchange, queue = entities

    class Broken:
        @kombu.hookimpl
        def kombu_before_publish(self):  # type: ignore[no-untyped-def]
            raise ValueError("observer bug")

        @kombu.hookimpl
        def kombu_message_acked(self):  # type: ignore[no-untyped-def]
            raise ValueError("observer bug")

    before = observability.errors().get(("broken-observer", "kombu_before_publish"), 0)
    caplog.set_level(logging.DEBUG, logger="kombu.observability")
    with recording() as events:
        kombu.register_plugin(Broken(), name="broken-observer")
        try:
            with Connection("memory://") as conn:
                seen = message_cycle(conn, exchange, queue)
        finally:
            kombu.unregister_plugin("broken-observer")
    assert len(seen) == 4
    # The other observer saw everything, whichever order they run in.
    assert events.count("kombu_before_publish") == 3
    assert events.count("kombu_message_acked") == 2
    assert observability.errors()[("broken-observer", "kombu_before_publish")] == before + 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR
              and "broken-observer" in r.getMessage()]
    assert {r.getMessage().split(" raised in ")[1].split(";")[0] for r in errors} == {
        "kombu_before_publish", "kombu_message_acked"}
    assert all(r.exc_info and r.exc_info[0] is ValueError for r in errors)


def test_flags_follow_registration() -> None:
    assert not observability.active.publish  # the suite registers observers only in blocks

    class AcksOnly:
        @kombu.hookimpl
        def kombu_message_acked(self, delivery_tag):  # type: ignore[no-untyped-def]
            pass

    plugin = AcksOnly()
    name = kombu.register_plugin(plugin)
    try:
        assert observability.active.ack
        assert not (observability.active.publish or observability.active.deliver
                    or observability.active.connection or observability.active.consumer)
        with pytest.raises(ValueError, match="unregister the other one first"):
            kombu.register_plugin(plugin)
    finally:
        kombu.unregister_plugin(name)
    assert not observability.active.ack
    with pytest.raises(ValueError, match="is not a registered kombu observer"):
        kombu.unregister_plugin(plugin)
    with pytest.raises(ValueError, match="No kombu observer plugin is registered as 'nope'"):
        kombu.unregister_plugin("nope")


def test_an_unknown_argument_name_is_refused_at_registration() -> None:
    import pluggy

    class Typo:
        @kombu.hookimpl
        def kombu_before_publish(self, routing_kee):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(pluggy.PluginValidationError, match="routing_kee"):
        kombu.register_plugin(Typo())
    assert not observability.active.publish


def test_recorder_is_a_valid_plugin_for_every_event_hook() -> None:
    hooks = {name for name in dir(EventRecorder) if name.startswith("kombu_")}
    assert hooks == set(observability.EVENT_HOOKS)


# -- plugins from entry points, in fresh interpreters ---------------------------

PLUGIN = textwrap.dedent("""
    import kombu

    events = []

    @kombu.hookimpl
    def kombu_before_publish(routing_key):
        events.append(("publish", routing_key))

    @kombu.hookimpl
    def kombu_message_acked(delivery_tag):
        events.append(("ack",))
""")

CYCLE = textwrap.dedent("""
    import logging
    import sys
    import kombu
    assert "pluggy" not in sys.modules and "kombu.observability" not in sys.modules
    logging.basicConfig(format="%(levelname)s %(message)s")
    kombu.register_transport("memory", "kombu_memory.transport:Transport")
    from kombu import Connection
    with Connection("memory://") as conn:
        q = conn.SimpleQueue("ep-q")
        q.put("x")
        q.get(timeout=1).ack()
        q.close()
    from kombu import observability
    import obsplug
    print(sorted(obsplug.events), observability.plugin_info())
""")


def _install_plugin(tmp_path: Path, module: str, source: str, dist: str = "obs-dist") -> None:
    (tmp_path / f"{module}.py").write_text(source)
    info = tmp_path / f"{dist.replace('-', '_')}-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[kombu.plugins]\n{module} = {module}\n")


def test_an_entry_point_plugin_is_loaded_on_the_first_event(tmp_path: Path) -> None:
    _install_plugin(tmp_path, "obsplug", PLUGIN)
    out = run_python(CYCLE, env={"PYTHONPATH": str(tmp_path)}).stdout
    assert out.strip() == ("[('ack',), ('publish', 'ep-q')] [{'plugin': 'obsplug', "
                           "'dist': 'obs-dist', 'version': '1.2', 'error': None}]")


def test_entry_point_plugins_can_be_blocked_or_not_loaded(tmp_path: Path) -> None:
    _install_plugin(tmp_path, "obsplug", PLUGIN)
    for env in ({"KOMBU_BLOCKED_PLUGINS": "obs-dist"}, {"KOMBU_BLOCKED_PLUGINS": "obsplug"},
                {"KOMBU_DISABLE_PLUGIN_AUTOLOAD": "1"}):
        out = run_python(CYCLE, env={"PYTHONPATH": str(tmp_path), **env}).stdout
        assert out.strip() == "[] []", env


def test_a_broken_entry_point_plugin_is_logged_and_ignored(tmp_path: Path) -> None:
    _install_plugin(tmp_path, "obsplug", PLUGIN)
    _install_plugin(tmp_path, "badplug", "raise ImportError('no such tracer')\n",
                    dist="bad-dist")
    out = run_python(CYCLE, env={"PYTHONPATH": str(tmp_path)})
    assert "[('ack',), ('publish', 'ep-q')]" in out.stdout
    assert "'plugin': 'badplug', 'dist': 'bad-dist', 'version': '1.2', " \
           "'error': 'ImportError: no such tracer'" in out.stdout
    assert "kombu observer plugin 'badplug' (bad-dist 1.2) could not be loaded" in out.stderr


def test_import_kombu_loads_no_observer_machinery() -> None:
    code = ("import sys, kombu\n"
            "print(sorted(m for m in ('pluggy', 'kombu.observability', 'importlib.metadata')"
            " if m in sys.modules))")
    assert run_python(code).stdout.strip() == "[]"
    assert "register_plugin" in kombu.__all__ and "unregister_plugin" in kombu.__all__
    assert sys.modules["kombu.observability"] is observability


def test_consumers_report_each_queue_started_and_cancelled(unique) -> None:  # type: ignore[no-untyped-def]
    first, second = Queue(unique("q")), Queue(unique("q"))
    with Connection("memory://") as conn, recording() as events:
        Producer(conn).publish("x", routing_key=first.name, declare=[first, second])
        consumer = Consumer(conn, [first, second], no_ack=True,
                            callbacks=[lambda body, message: message.ack()])
        consumer.consume()
        conn.drain_events(timeout=2)
        consumer.cancel_by_queue(first.name)
        consumer.cancel()
    started = events.of("kombu_consumer_started")
    assert [(e["queue"], e["no_ack"]) for e in started] == [(first.name, True),
                                                             (second.name, True)]
    assert [(e["queue"], e["consumer_tag"]) for e in events.of("kombu_consumer_cancelled")] \
        == [(e["queue"], e["consumer_tag"]) for e in started]
    # A no-ack delivery has nothing to acknowledge: ack() does nothing and reports nothing.
    assert events.count("kombu_message_delivered") == 1
    assert events.count("kombu_message_acked") == 0
