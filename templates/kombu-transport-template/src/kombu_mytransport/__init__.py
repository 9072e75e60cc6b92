"""kombu-mytransport: a kombu transport plugin (``mytransport://``)."""

__version__ = "0.1.0"
