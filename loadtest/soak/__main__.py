"""``python -m loadtest.soak``: see ``loadtest/soak/__init__.py``."""

import sys

from loadtest.soak.main import main

sys.exit(main())
