"""The argument parser of every command in the project: a bad flag gets one line naming it, exit status 2.

argparse prints the whole usage before its error; the project's rule is one line naming the
problem.  ``python -m server`` and the ``python -m loadtest.X`` entry points all use this class
(loadtest imports the server package, never the other way round).  Stdlib only; knows nothing
of any command's flags.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")
