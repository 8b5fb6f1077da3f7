"""Who owns which namespaces: a record per stack, so leftovers are found, and only ours are ever removed.

A netns stack's namespaces, the WAN bridge inside one of them and its links outlive the process that made them
(`ip netns add` pins a namespace to a file). So before it makes anything the runtime writes an owner record
(``RECORDS_DIR/<prefix>.json``: its pid and start time, its namespaces, its host link, its subnet), and a
watcher (chaos.runtime.watcher; ``python -m chaos.runtime.netns_owner <record>``) waits for the owner: when it dies
without tearing down (a SIGKILL), the watcher removes everything the record names (first killing what still
runs inside its namespaces, such as a latency fault's delayer). ``sweep`` does the same at the next start for a
record whose owner and watcher both died. Nothing is removed that the record does not name and that does not
carry its prefix, so another stack's namespaces, and anything the runtime did not create, are never touched.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from chaos.runtime import netlink, watcher
from chaos.runtime.pids import is_process, start_time

RECORDS_DIR = Path("/run/blackout-netns")
SUBNET_BASE = "10.231"  # 10.231.N.0/24 per stack: RFC 1918, a range a home or office network rarely uses


@dataclass(frozen=True)
class OwnerRecord:
    prefix: str
    pid: int
    started: float
    subnet: int  # N of 10.231.N.0/24
    namespaces: tuple[str, ...]
    host_link: str

    @property
    def path(self) -> Path:
        return RECORDS_DIR / f"{self.prefix}.json"

    def write(self) -> None:
        RECORDS_DIR.mkdir(mode=0o700, exist_ok=True)
        self.path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> OwnerRecord | None:
        try:
            data = json.loads(path.read_text())
            return cls(**{**data, "namespaces": tuple(data["namespaces"])})
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def alive(self) -> bool:
        return is_process(self.pid, self.started)


@contextmanager
def records_lock() -> Iterator[None]:
    """One stack at a time picks a subnet and writes its record (parallel tests start stacks at once)."""
    RECORDS_DIR.mkdir(mode=0o700, exist_ok=True)
    with (RECORDS_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def records() -> list[OwnerRecord]:
    if not RECORDS_DIR.is_dir():
        return []
    found = (OwnerRecord.read(path) for path in sorted(RECORDS_DIR.glob("*.json")))
    return [record for record in found if record is not None]


def claim(prefix: str, namespaces: list[str], host_link: str) -> OwnerRecord:
    """Write this process's record with a /24 no address, route or other stack uses. Call before creating
    anything: whatever exists later is named by a record."""
    with records_lock():
        sweep()
        taken = {record.subnet for record in records()}
        used = netlink.used_subnets()
        for subnet in range(256):
            if subnet not in taken and f"{SUBNET_BASE}.{subnet}." not in used:
                break
        else:
            raise netlink.NetlinkError(f"no free /24 left in {SUBNET_BASE}.0.0/16")
        me = os.getpid()
        record = OwnerRecord(prefix, me, start_time(me) or 0.0, subnet, tuple(namespaces), host_link)
        record.write()
        return record


def remove(record: OwnerRecord) -> list[str]:
    """Delete what ``record`` names (only names with its prefix), then the record; what was removed. Every item
    is tried; if one stays, the record stays too (the next sweep tries again) and NetlinkError says which."""
    removed, errors = [], []
    existing = set(netlink.namespaces())
    for name in record.namespaces:
        if name.startswith(record.prefix) and name in existing:
            removed += _kill_inside(name)
            try:
                netlink.delete_namespace(name)
                removed.append(f"netns {name}")
            except netlink.NetlinkError as exc:
                errors.append(str(exc))
    # Normally gone with its peer in the WAN namespace; a peer still held by a dying process keeps it a moment.
    if record.host_link.startswith(record.prefix) and record.host_link in netlink.host_links():
        try:
            netlink.delete_host_link(record.host_link)
            removed.append(f"link {record.host_link}")
        except netlink.NetlinkError as exc:
            errors.append(str(exc))
    if errors:
        raise netlink.NetlinkError(f"stack {record.prefix} not fully removed: {'; '.join(errors)}")
    record.path.unlink(missing_ok=True)
    return removed


def _kill_inside(namespace: str) -> list[str]:
    """SIGKILL what still runs in one of the stack's namespaces (a latency fault's delayer, chaos.runtime.delayer;
    an instance whose death signal has not landed yet): a process inside keeps the namespace, its links and its
    rules alive after `ip netns delete`, which only unpins it. Only processes that joined our namespace: ours."""
    killed = []
    for pid in netlink.pids_in(namespace):
        with suppress(ProcessLookupError):  # gone on its own meanwhile
            os.kill(pid, signal.SIGKILL)
            killed.append(f"process {pid} in {namespace}")
    return killed


def sweep() -> list[str]:
    """Remove the leftovers of every stack whose owner is dead; what was removed."""
    removed = []
    for record in records():
        if not record.alive():
            try:
                removed += remove(record)
            except netlink.NetlinkError as exc:  # one stuck stack must not stop a new one from starting
                removed.append(f"(not all: {exc})")
    return removed


def start_watcher(record: OwnerRecord, log_path: Path) -> subprocess.Popen[bytes]:
    return watcher.start("chaos.runtime.netns_owner", [str(record.path)], log_path)


def watch(path: Path) -> int:
    """Wait for the record's owner to die; then, unless it tore down itself (its record is gone), clean up."""
    record = OwnerRecord.read(path)
    if record is None:
        return 0
    watcher.wait_for_death(record.pid, record.started)
    with records_lock():
        current = OwnerRecord.read(path)
        if current is not None and not current.alive():
            print(f"owner {record.pid} died without tearing down; removed: {', '.join(remove(current))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(watch(Path(sys.argv[1])))
