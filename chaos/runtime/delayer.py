"""Latency in the network layer where the kernel has no netem: a process in a data center's namespace that holds
each packet a rule queued to it (NFQUEUE, chaos.runtime.nfqueue) for ``ms`` +/- ``jitter_ms``, then lets it go.

``python -m chaos.runtime.delayer NETNS_PATH QUEUE MS JITTER_MS``: it joins the namespace, binds the queue,
prints "ready" and releases each packet when its time comes, in any order (each draws its own delay, uniform in
ms +/- jitter like netem's default, so jitter reorders packets as netem's does). SIGTERM: what it holds goes at
once, then it exits. The rule says ``--queue-bypass``: with no delayer bound, packets pass undelayed.
"""

from __future__ import annotations

import heapq
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from chaos.runtime import netlink, nfqueue
from chaos.runtime.base import RuntimeError_
from chaos.runtime.watcher import PROJECT_ROOT

READY = "ready"
READY_WITHIN_S = 30.0  # a Python start on a loaded 2-core machine
STOP_GRACE_S = 5.0
VERDICTS_PER_SEND = 1024


def start(namespace: Path, queue: int, ms: float, jitter_ms: float, log_path: Path) -> subprocess.Popen[str]:
    """The delayer for ``queue`` in ``namespace``, returned once it has bound the queue. In a session of its own:
    a Ctrl-C meant for the controller leaves it to the controller's rollback (which stops it)."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(namespace), str(queue), f"{ms:g}", f"{jitter_ms:g}"],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_WITHIN_S)
    if not ready or proc.stdout.readline().strip() != READY:
        stop(proc)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError_(f"the delayer for queue {queue} did not start: {' / '.join(tail) or 'no output'}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (it lets what it holds go), SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def hold(queue: nfqueue.Queue, rng: random.Random, ms: float, jitter_ms: float, wake: int) -> None:
    """Release each queued packet ``ms`` +/- ``jitter_ms`` after it came, until ``wake`` is readable (a signal)."""
    due: list[tuple[float, int]] = []  # (release time, packet id): a heap
    while True:
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else None
        readable, _, _ = select.select([queue.fileno(), wake], [], [], timeout)
        if wake in readable:
            queue.accept(packet_id for _, packet_id in due)
            return
        now = time.monotonic()
        for packet_id in queue.receive():
            heapq.heappush(due, (now + max(0.0, rng.uniform(ms - jitter_ms, ms + jitter_ms)) / 1000, packet_id))
        going: list[int] = []
        while due and due[0][0] <= now and len(going) < VERDICTS_PER_SEND:
            going.append(heapq.heappop(due)[1])
        queue.accept(going)


def main(argv: list[str]) -> int:
    namespace, number, ms, jitter_ms = Path(argv[0]), int(argv[1]), float(argv[2]), float(argv[3])
    try:
        netlink.enter(namespace)  # this (only) thread: the queue's socket is made in the data center's namespace
        queue = nfqueue.Queue(number)
    except (OSError, netlink.NetlinkError) as exc:  # a namespace gone, a queue another holds: one line, to the log
        print(f"delayer: {namespace} queue {number}: {exc}", file=sys.stderr)
        return 1
    wake, poke = os.pipe()
    os.set_blocking(poke, False)
    signal.set_wakeup_fd(poke)
    signal.signal(signal.SIGTERM, lambda *_: None)  # the wakeup fd tells the loop
    print(READY, flush=True)
    try:
        hold(queue, random.Random(), ms, jitter_ms, wake)
    finally:
        queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
