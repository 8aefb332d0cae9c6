"""``make soak: long mixed load on each lab mode, watching memory, descriptors and failures``.

The command is ``main.py``; what it may import: docs/architecture.md.
"""
