"""kombu 5.x's import path of the Redis transport, provided by kombu-redis."""

from kombu.transport._compat import reexport

globals().update(reexport("redis", "kombu_redis.transport", "kombu-redis"))
