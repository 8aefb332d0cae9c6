"""``python -m loadtest.answers``: see ``loadtest.answers.main``."""

import sys

from loadtest.answers.main import main

sys.exit(main())
