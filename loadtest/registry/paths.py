"""Where the project is: the one repository root every module that needs it imports (stdlib only)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # loadtest/registry/paths.py -> the checkout
RESULTS = PROJECT_ROOT / "results"  # every command's default place for its run directories
