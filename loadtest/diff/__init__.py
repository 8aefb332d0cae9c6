"""``make diff: what changed between two run directories, beyond the noise``.

The command is ``main.py``; what it may import: docs/architecture.md.
"""
