"""Acks written without waiting, spread over two masters, one of which answers
``ASK`` (its slot is migrating, done by hand with CLUSTER SETSLOT and
MIGRATE): the redirected ack is sent again to the node the slot is moving
to, and no record is left on either side.

This is the event loop's ack path (``ClusterAcks.send`` on every turn); a
reshard during traffic exercises it too, but only when the timing is right.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest
from helpers.redis_cluster import LocalCluster, names_on_every_master
from kombu import Connection, Producer, Queue

pytestmark = [pytest.mark.rediscluster, pytest.mark.timeout(120)]


def node_client(port: int) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)


def test_a_redirected_ack_on_the_second_master_is_sent_again(
        redis_cluster: LocalCluster, unique: Callable[..., str]) -> None:
    from kombu_redis.cluster_keys import ClusterKeySchema, slot_of

    redis_cluster.wait_ok()
    owner = names_on_every_master(redis_cluster, lambda: unique("cak"), 1)
    first, moving = list(owner)[:2]
    source = owner[moving]
    target = next(p for p in set(owner.values()) if p not in (source, owner[first]))
    ids = redis_cluster.node_ids()
    keys = ClusterKeySchema()
    unacked, index, _ = keys.record_keys(moving)
    slot = slot_of(unacked)
    with Connection(redis_cluster.url()) as conn:
        producer = Producer(conn)
        for name in (first, moving):
            producer.publish({"q": name}, routing_key=name, declare=[Queue(name)])
        channel = conn.default_channel
        held = [channel.basic_get(first), channel.basic_get(moving)]
        assert all(m is not None for m in held)
        tags = [m.delivery_tag for m in held]  # type: ignore[union-attr]
        src, dst = node_client(source), node_client(target)
        try:
            assert src.hlen(unacked) == 1
            # Move the slot of `moving`'s records by hand, half way: the source
            # answers ASK for them from now on.
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
            present = [k for k in (unacked, index) if src.exists(k)]
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *present)
            # Both acks written without waiting, in one batch over two masters.
            acks = channel.acks
            acks.pending = list(tags)
            acks.send()
            assert channel.link.confirm(time.monotonic() + 5)
            assert acks.pending == [tags[1]] and acks.follow, \
                "the ack that came back ASK is pending again"
            acks.send()  # follows ASK to the target
            assert acks.pending == [] and not acks.follow
            pipe = dst.pipeline(transaction=False)
            pipe.execute_command("ASKING")
            pipe.hlen(unacked)
            pipe.execute_command("ASKING")
            pipe.zcard(index)
            _, left_hash, _, left_index = pipe.execute()
            assert (left_hash, left_index) == (0, 0), "the redirected ack was lost"
        finally:
            for port in set(owner.values()):
                node_client(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE",
                                                  ids[target])
            src.close()
            dst.close()
    redis_cluster.wait_ok()
    first_unacked, _, _ = keys.record_keys(first)
    client = node_client(owner[first])
    try:
        assert client.hlen(first_unacked) == 0
    finally:
        client.close()
