# kombu-core's conformance kit, as a pytest plugin (assertion rewriting,
# --kombu-url, --kombu-wait).
pytest_plugins = ["kombu.testing.pytest_plugin"]
