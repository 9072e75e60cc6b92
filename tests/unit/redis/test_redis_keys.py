"""The kombu-redis key schema, topic patterns and queue arguments (no broker)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("redis", reason="kombu-redis needs redis-py (pip install redis)")

from kombu_redis.keys import (
    SEP,
    KeySchema,
    fanout_prefix,
    glob_escape,
    kombu_topic_pattern,
    parse_binding_member,
    record_field,
    tracking_prefixes,
)
from kombu_redis.options import queue_arguments, queue_expires


def test_queue_keys_follow_kombus_priority_layout() -> None:
    keys = KeySchema("p:")
    assert keys.queue_keys("q") == ["p:q", f"p:q{SEP}3", f"p:q{SEP}6", f"p:q{SEP}9"]
    assert [keys.priority(n) for n in range(10)] == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9]
    assert keys.queue_key("q", 0) == "p:q"
    assert keys.queue_key("q", 7) == f"p:q{SEP}6"
    assert keys.priority_suffix(0) == "" and keys.priority_suffix(4) == f"{SEP}3"
    assert keys.rejected_key("q") == f"p:q{SEP}rejected"


def test_priority_steps_are_sorted_and_custom() -> None:
    keys = KeySchema(priority_steps=[5, 0])
    assert keys.priority_steps == [0, 5]
    assert keys.queue_keys("q") == ["q", f"q{SEP}5"]
    assert keys.priority(4) == 0 and keys.priority(9) == 5


def test_unacked_keys_carry_the_prefix_and_custom_names() -> None:
    keys = KeySchema("p:", unacked_key="u", unacked_index_key="ui", unacked_mutex_key="um")
    assert (keys.unacked, keys.index, keys.mutex) == ("p:u", "p:ui", "p:um")
    assert keys.unacked_rejected == f"p:u{SEP}rejected"
    assert keys.binding_deadlines == "p:_kombu.binding_deadlines"


def test_binding_tables_and_members() -> None:
    keys = KeySchema("p:")
    assert keys.binding_key("ex") == "p:_kombu.binding.ex"
    assert keys.permanent_key("ex") == "p:_kombu.binding_permanent.ex"
    assert keys.binding_key_prefixes() == ["p:_kombu.binding.", "p:_kombu.binding_permanent."]
    assert keys.binding_member("rk", "", "q") == f"rk{SEP}{SEP}q"
    assert keys.binding_member(None, None, "q") == f"{SEP}{SEP}q"
    assert parse_binding_member(keys.binding_member("rk", "", "q").encode()) == ("rk", "", "q")
    with pytest.raises(ValueError, match="not a binding member"):
        parse_binding_member("no separators")


def test_topic_members_carry_kombus_regex_and_the_legacy_one_on_unbind() -> None:
    keys = KeySchema()
    member = keys.binding_member("a.*.#", "a.*.#", "q", topic=True)
    assert member == SEP.join(["a.*.#", r"^a\.[^\.]+\..*?$", "q"])
    members = keys.binding_members("a.*", "a.*", "q", topic=True)
    assert members == [SEP.join(["a.*", r"^a\.[^\.]+$", "q"]),
                       SEP.join(["a.*", r"^a\..*?[^\.]$", "q"])]
    # Without a wildcard the legacy regex is the same: one member.
    assert len(keys.binding_members("a.b", "a.b", "q", topic=True)) == 1
    # Not a topic binding: the pattern is kept as given.
    assert keys.binding_members("a.*", "a.*", "q") == [SEP.join(["a.*", "a.*", "q"])]


@pytest.mark.parametrize(("key", "matches", "misses"), [
    ("a.*.c", ["a.b.c", "a.xyz.c"], ["a.c", "a.b.b.c", "a..c"]),
    ("a.#", ["a.", "a.b", "a.b.c"], ["b.a"]),
    ("price+tax.$", ["price+tax.$"], ["priceetax.$", "price+tax.x"]),
])
def test_topic_patterns_match_as_kombu_matches(key: str, matches: list[str],
                                               misses: list[str]) -> None:
    pattern = re.compile(kombu_topic_pattern(key))
    assert all(pattern.match(rk) for rk in matches), pattern.pattern
    assert not any(pattern.match(rk) for rk in misses), pattern.pattern


def test_fanout_channels_and_patterns() -> None:
    assert fanout_prefix(True, 3) == "/3."
    assert fanout_prefix("/{db}{x}.", 2) == "/2{x}."
    assert fanout_prefix(False, 3) == ""
    keys = KeySchema("p:", fanout="/0.")
    assert keys.publish_channel("ex", "rk") == "p:/0.ex/rk"
    assert keys.publish_channel("ex", "") == "p:/0.ex"
    assert keys.subscribe_patterns("ex", "") == ("p:/0.ex", "p:/0.ex/*")
    assert keys.subscribe_patterns("ex", "a.*") == ("p:/0.ex/a.*",)
    assert keys.subscribe_patterns("e*x", "") == (r"p:/0.e\*x", r"p:/0.e\*x/*")
    assert keys.fanout_exchange(b"p:/0.ex/rk") == "ex"
    no_patterns = KeySchema(fanout="", fanout_patterns=False)
    assert no_patterns.publish_channel("ex", "rk") == "ex"
    assert no_patterns.subscribe_patterns("ex", "rk") == ("ex",)


def test_glob_escape_and_tracking_prefixes() -> None:
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    # Redis refuses overlapping prefixes: 'q' covers 'q2'.
    assert tracking_prefixes(["q2", "q", "r", "q"]) == ("q", "r")
    assert tracking_prefixes([]) == ()


def test_record_fields_keep_copies_apart() -> None:
    assert record_field("tag", "q") == "tag@q"
    assert record_field("tag", "q", 2) == "tag@q@2"


def test_queue_arguments_map_expires_to_x_expires() -> None:
    assert queue_arguments(None) == {}
    assert queue_arguments({"x-max-length": 3}, expires=1.5) == {"x-max-length": 3,
                                                                 "x-expires": 1500}
    assert queue_expires({"x-expires": "2500"}) == 2500
    assert queue_expires({"x-expires": "soon"}) is None
    assert queue_expires(None) is None and queue_expires({}) is None
