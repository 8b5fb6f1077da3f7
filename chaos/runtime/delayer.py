"""Latency and corruption in the network layer where the kernel has no netem: a process in a data center's namespace
that holds each packet a rule queued to it (NFQUEUE, chaos.runtime.nfqueue) for ``ms`` +/- ``jitter_ms``, and
flips one bit of ``corrupt_percent`` % of them, then lets them go.

``python -m chaos.runtime.delayer NETNS_PATH QUEUE MS JITTER_MS CORRUPT_PERCENT``: it joins the namespace, binds
the queue, prints "ready" and releases each packet when its time comes, in any order (each draws its own delay,
uniform in ms +/- jitter like netem's default, so jitter reorders packets as netem's does). With a corrupt
percent every packet's bytes are copied here (and GSO packets cut into segments by the kernel first); a corrupted
one goes on with its new bytes, which the receiver's TCP or UDP checksum rejects (netem's ``corrupt``). SIGTERM:
what it holds goes at once, then it exits. The rule says ``--queue-bypass``: with no delayer bound, packets pass
unchanged.
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
STOPPED = "delayer stopped:"
READY_WITHIN_S = 30.0  # a Python start on a loaded 2-core machine
STOP_GRACE_S = 5.0
VERDICTS_PER_SEND = 1024


def start(
    namespace: Path, queue: int, ms: float, jitter_ms: float, log_path: Path, corrupt_percent: float = 0.0
) -> subprocess.Popen[str]:
    """The delayer for ``queue`` in ``namespace``, returned once it has bound the queue. In a session of its own:
    a Ctrl-C meant for the controller leaves it to the controller's rollback (which stops it)."""
    numbers = [f"{ms:g}", f"{jitter_ms:g}", f"{corrupt_percent:g}"]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(namespace), str(queue), *numbers],
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


def hold(
    queue: nfqueue.Queue, rng: random.Random, ms: float, jitter_ms: float, wake: int, corrupt_percent: float = 0.0
) -> tuple[int, int]:
    """Release each queued packet ``ms`` +/- ``jitter_ms`` after it came, ``corrupt_percent`` % of them with a bit
    flipped, until ``wake`` is readable (a signal). How many packets it let go, and how many of them corrupted."""
    due: list[tuple[float, int]] = []  # (release time, packet id): a heap
    changed: dict[int, bytes] = {}  # packet id -> its corrupted bytes
    seen = corrupted = 0

    def verdicts(ids: list[int]) -> list[tuple[int, bytes | None]]:
        return [(packet_id, changed.pop(packet_id, None)) for packet_id in ids]

    while True:
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else None
        readable, _, _ = select.select([queue.fileno(), wake], [], [], timeout)
        if wake in readable:
            queue.accept(verdicts([packet_id for _, packet_id in due]))
            return seen, corrupted
        now = time.monotonic()
        for packet in queue.receive():
            seen += 1
            if corrupt_percent and rng.random() * 100 < corrupt_percent:
                changed[packet.id] = nfqueue.flip_bit(packet.data, rng)
                corrupted += 1
            heapq.heappush(due, (now + max(0.0, rng.uniform(ms - jitter_ms, ms + jitter_ms)) / 1000, packet.id))
        going: list[int] = []
        while due and due[0][0] <= now and len(going) < VERDICTS_PER_SEND:
            going.append(heapq.heappop(due)[1])
        queue.accept(verdicts(going))


def main(argv: list[str]) -> int:
    namespace, number = Path(argv[0]), int(argv[1])
    ms, jitter_ms, corrupt_percent = float(argv[2]), float(argv[3]), float(argv[4])
    try:
        netlink.enter(namespace)  # this (only) thread: the queue's socket is made in the data center's namespace
        queue = nfqueue.Queue(number, copy=corrupt_percent > 0)
    except (OSError, netlink.NetlinkError) as exc:  # a namespace gone, a queue another holds: one line, to the log
        print(f"delayer: {namespace} queue {number}: {exc}", file=sys.stderr)
        return 1
    wake, poke = os.pipe()
    os.set_blocking(poke, False)
    signal.set_wakeup_fd(poke)
    signal.signal(signal.SIGTERM, lambda *_: None)  # the wakeup fd tells the loop
    print(READY, flush=True)
    try:
        seen, corrupted = hold(queue, random.Random(), ms, jitter_ms, wake, corrupt_percent)
    finally:
        queue.close()
    # its log's last line: what an operator (and a test) checks against the receiver's checksum-error counter
    print(f"{STOPPED} queue {number}: {seen} packets, {corrupted} corrupted", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
