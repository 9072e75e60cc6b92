"""kombu-redis: the Redis transport of kombu-core.

Importing this package does not import redis-py; the transport classes
live in :mod:`kombu_redis.transport`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ("__version__",)
