"""kombu-pyamqp: the AMQP 0-9-1 transport of kombu-core, through ``amqp``.

The transport lives in :mod:`kombu_pyamqp.transport`; :mod:`kombu_pyamqp.plugin`
registers it as ``pyamqp``, ``amqp`` and ``amqps``.  Importing this package
does not import the ``amqp`` library.
"""

from __future__ import annotations

__version__ = "0.1.0"
