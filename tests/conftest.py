"""Shared test setup: make ``tests/fakes`` importable as ``fakes`` (the tests tree has no __init__.py)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

# A suite started in the background by a non-interactive shell (`make test &`, nohup) inherits SIGINT ignored,
# and so does every process a test starts: the tests that press Ctrl-C on a `blackout` command then wait in vain
# (and leave its Prometheus running). The suite's children get Python's own Ctrl-C, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
