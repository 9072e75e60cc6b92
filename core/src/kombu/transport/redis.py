"""kombu 5.x's import path of the Redis transport, provided by kombu-redis."""

from kombu.transport._compat import reexport

_transport = reexport("redis", "kombu_redis.transport", "kombu-redis")
# kombu 5.x defines these here too (Celery's Redis result backend imports them).
_errors = reexport("redis", "kombu_redis.errors", "kombu-redis")
_ERROR_NAMES = ("error_classes_t", "get_redis_ConnectionError", "get_redis_error_classes")
globals().update(_transport)
globals().update({name: _errors[name] for name in _ERROR_NAMES})
__all__ = [*_transport["__all__"], *_ERROR_NAMES]
