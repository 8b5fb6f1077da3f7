"""A benchmark's stack may keep its files in RAM (the overload benchmark does): its databases live there
while it runs, and nothing is left when it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from support import stack


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tmpfs(path: Path) -> bool:
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    return any(fields[1] == str(path) and fields[2] == "tmpfs" for fields in mounts)


@pytest.mark.skipif(not _tmpfs(stack.MEMORY), reason="needs /dev/shm as a tmpfs (Linux)")
def test_a_stack_in_memory_keeps_its_databases_in_ram_and_leaves_nothing_behind():
    with stack.running(stack.topology("fragile"), "naive", in_memory=True) as runtime:
        where = Path(runtime.run_dir)
        assert where.parent == stack.MEMORY
        databases = sorted(p.name for p in where.rglob("*.sqlite3"))
        assert "views-east.sqlite3" in databases  # the instances opened their stores there
    assert not where.exists()


def test_by_default_a_stack_keeps_its_files_on_disk():
    with stack.running(stack.topology("fragile"), "naive") as runtime:
        assert stack.MEMORY not in Path(runtime.run_dir).parents


@pytest.mark.skipif(not _tmpfs(stack.MEMORY), reason="needs /dev/shm as a tmpfs (Linux)")
def test_a_benchmark_stopped_with_sigterm_tears_its_stack_down_and_removes_its_folder():
    script = (
        "import sys, time; from support import stack\n"
        "with stack.running(stack.topology('fragile'), 'naive', in_memory=True) as runtime:\n"
        "    print(runtime.run_dir, *(i['pid'] for i in runtime.status().values() if i['pid']), flush=True)\n"
        "    time.sleep(60)\n"
    )
    benchmark = subprocess.Popen(
        [sys.executable, "-c", script], cwd=stack.PROJECT / "benchmarks", stdout=subprocess.PIPE, text=True
    )
    try:
        assert benchmark.stdout is not None
        where, *pids = benchmark.stdout.readline().split()  # the stack is up
        assert Path(where).is_dir()
        benchmark.send_signal(signal.SIGTERM)
        assert benchmark.wait(timeout=60) != 0  # interrupted, not finished
        assert not Path(where).exists()
        assert not [pid for pid in map(int, pids) if _alive(pid)]  # every instance of the stack ended
    finally:
        if benchmark.poll() is None:
            benchmark.kill()
            benchmark.wait()
