"""Make ``benchmarks/support`` importable as ``support``, as the benchmark scripts see it (run from benchmarks/)."""

from __future__ import annotations

import sys
from pathlib import Path

_BENCHMARKS_DIR = str(Path(__file__).resolve().parents[2] / "benchmarks")
if _BENCHMARKS_DIR not in sys.path:
    sys.path.insert(0, _BENCHMARKS_DIR)
