"""Each team's CPUs: a disjoint set per team when the machine has the cores (or when asked), none when it has
not; the set given to a real child is what the kernel reports for it and for what it forks."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from chaos.workshop import cpus
from services.common.errors import UsageError


def test_teams_get_disjoint_sets_when_the_machine_has_the_cores_and_share_when_not():
    eight = list(range(8))
    assert cpus.plan(["red", "blue", "green"], None, eight) == {"red": [0, 1], "blue": [2, 3], "green": [4, 5]}
    assert cpus.plan(["red", "blue", "green"], None, [0, 1, 2, 3]) is None  # 2 each do not fit: shared
    assert cpus.plan(["red", "blue"], 1, [0, 1]) == {"red": [0], "blue": [1]}
    with pytest.raises(UsageError, match="3 teams need 3 CPUs, this machine gives 2"):
        cpus.plan(["red", "blue", "green"], 1, [0, 1])


def test_the_kernel_list_format_is_read_whole():
    assert cpus.expand("0-2,5,7-8") == [0, 1, 2, 5, 7, 8]
    assert cpus.expand("3") == [3]


@pytest.mark.skipif(len(cpus.available()) < 2, reason="needs 2 CPUs to pin to one of them")
def test_a_pinned_child_and_the_process_it_forks_run_on_the_set_only():
    last = cpus.available()[-1]
    # the child forks a grandchild, as a team's supervisor forks its services; both wait on stdin
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', 'input()']); input()"],
        stdin=subprocess.PIPE,
        preexec_fn=cpus.pinned([last]),
    )
    try:
        deadline = time.monotonic() + 20
        while len(cpus.stack_pids(child.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # poll interval: the grandchild is starting
        family = cpus.stack_pids(child.pid)
        assert len(family) == 2
        assert [cpus.allowed(pid) for pid in family] == [[last], [last]]
    finally:
        child.communicate(b"\n\n", timeout=10)
    assert cpus.allowed(child.pid) is None  # gone: nothing to read
    assert cpus.pinned(None) is None
