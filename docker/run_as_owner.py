"""Run a command as the owner of a directory -- how ``compare`` writes ``./results``.

A bind-mounted host directory keeps its host owner. Writing there as the image's
fixed uid fails unless the uids happen to match, and writing as root leaves files
the host user cannot remove. So the ``compare`` service starts as root only long
enough to read the directory's owner, drops to that uid/gid, and ``exec``s the
command: same pid, so ``docker compose stop`` still reaches it directly.

Usage: python docker/run_as_owner.py DIR COMMAND [ARG...]
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: run_as_owner.py DIR COMMAND [ARG...]", file=sys.stderr)
        return 2
    directory, command = argv[0], argv[1:]
    try:
        owner = os.stat(directory)
    except OSError as exc:
        print(f"run_as_owner: cannot stat {directory}: {exc.strerror}", file=sys.stderr)
        return 2
    # Only root can switch; a root-owned directory (e.g. created by the Docker
    # daemon because it did not exist) is written as root, which is its owner.
    if os.geteuid() == 0 and owner.st_uid != 0:
        os.setgroups([])
        os.setgid(owner.st_gid)
        os.setuid(owner.st_uid)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"run_as_owner: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
