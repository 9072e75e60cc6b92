"""kombu-dictq: an example third-party transport for kombu-core."""

__version__ = "0.1.0"
