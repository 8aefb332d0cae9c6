"""``python -m loadtest.report``: see ``loadtest/report/__init__.py``."""

import sys

from loadtest.report.main import main

sys.exit(main())
