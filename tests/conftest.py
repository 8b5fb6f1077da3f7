"""Shared test setup: make ``tests/fakes`` importable as ``fakes`` (the tests tree has no __init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)
