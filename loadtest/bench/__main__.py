"""``python -m loadtest.bench``: see ``loadtest/bench/__init__.py``."""

import sys

from loadtest.bench.main import main

sys.exit(main())
