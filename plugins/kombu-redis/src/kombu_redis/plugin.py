"""Registers the Redis transports with kombu (loaded through entry points).

This module must stay light: it does not import redis-py.
"""

from __future__ import annotations

from typing import Callable

import kombu


@kombu.hookimpl
def kombu_register_transports(register: Callable[..., None]) -> None:
    register("redis", "kombu_redis.transport:Transport", aliases=("rediss",), api=(1, 0))
    register("sentinel", "kombu_redis.transport:SentinelTransport", api=(1, 0))
    register("rediscluster", "kombu_redis.cluster:ClusterTransport", aliases=("redisclusters",),
             api=(1, 0))
