"""A pid together with its start time tells a process from a later one that got the same number."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from chaos.runtime.pids import CLOCK_SLACK_S, existed_at, is_process, start_time


def test_a_process_is_its_pid_and_its_start_time():
    started = start_time(os.getpid())
    assert started is not None and started <= time.time()
    assert is_process(os.getpid(), started)
    assert not is_process(os.getpid(), started - 10 * CLOCK_SLACK_S)  # same number, another process


def test_a_process_that_started_after_a_moment_did_not_exist_then():
    moment = time.time() - 10 * CLOCK_SLACK_S
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert existed_at(os.getpid(), time.time()) and not existed_at(child.pid, moment)
    finally:
        child.communicate()
    assert start_time(child.pid) is None  # gone (reaped): no start time, never "the same process"


def test_a_zombie_is_no_process():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while start_time(child.pid) is not None:  # exited, not yet reaped: a zombie
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert not existed_at(child.pid, time.time())
    finally:
        child.wait()
