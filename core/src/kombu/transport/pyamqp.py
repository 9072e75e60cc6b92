"""kombu 5.x's import path of the AMQP (py-amqp) transport, provided by kombu-pyamqp."""

from kombu.transport._compat import reexport

globals().update(reexport("pyamqp", "kombu_pyamqp.transport", "kombu-pyamqp"))
