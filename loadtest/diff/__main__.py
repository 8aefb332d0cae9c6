"""``python -m loadtest.diff``: see ``loadtest/diff/__init__.py``."""

import sys

from loadtest.diff.main import main

sys.exit(main())
