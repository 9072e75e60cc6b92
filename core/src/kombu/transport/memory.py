"""kombu 5.x's import path of the in-memory transport, provided by kombu-memory."""

from kombu.transport._compat import reexport

globals().update(reexport("memory", "kombu_memory.transport", "kombu-memory"))
