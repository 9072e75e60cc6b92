"""``python -m kombu``: the ``kombu`` command."""

import sys

from kombu.cli import main

sys.exit(main())
