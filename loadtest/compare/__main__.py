"""``python -m loadtest.compare``: see ``loadtest/compare/__init__.py``."""

import sys

from loadtest.compare.main import main

sys.exit(main())
