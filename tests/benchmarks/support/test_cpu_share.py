"""A CPU cgroup caps what is added to it at its share of a core, and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest
from support import cpu_share


@pytest.mark.skipif(not cpu_share.available(), reason="needs root and a cgroup cpu controller")
def test_a_busy_process_gets_half_a_core_and_the_group_is_removed():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with cpu_share.cpu_share(0.5) as share:
            share.add(busy.pid)
            process = psutil.Process(busy.pid)
            before, started = sum(process.cpu_times()[:2]), time.monotonic()
            time.sleep(2.0)  # the span the CPU is measured over, not a wait for readiness
            used = (sum(process.cpu_times()[:2]) - before) / (time.monotonic() - started)
            assert used < 0.65  # a busy loop alone would take a whole core
            assert share.stat()["nr_throttled"] > 0
            group = share.group
        assert not group.exists()
        assert str(busy.pid) in (share.home / "cgroup.procs").read_text().split()  # moved back, still running
    finally:
        busy.kill()
        busy.wait()
