"""``python -m loadtest.tune``: see ``loadtest/tune/__init__.py``."""

import sys

from loadtest.tune.main import main

sys.exit(main())
