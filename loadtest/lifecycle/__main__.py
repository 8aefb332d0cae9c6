"""``python -m loadtest.lifecycle``: see ``loadtest/lifecycle/__init__.py``."""

import sys

from loadtest.lifecycle.main import main

sys.exit(main())
