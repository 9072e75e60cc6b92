"""kombu-memory: an in-process, thread-safe broker for kombu-core."""

__version__ = "1.0.0"
