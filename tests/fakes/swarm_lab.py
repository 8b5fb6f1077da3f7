"""docker/swarm-lab.sh driven from tests: a lab of its own per test (a unique prefix), torn down after, and a
loud reason to skip where it cannot start (not root, no dockerd, no image)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "swarm-lab.sh"
IMAGE = "local/debian:bookworm"  # the docker lab's smallest image: placement needs no Blackout code
DOCKER = shutil.which("docker") or "docker"


def why_not(image: str = IMAGE) -> str:
    # Each test starts a lab of three engines (~1 min with the image): minutes the 15-minute suite has not got.
    # `make test-swarm` runs them (CI does, after `make test`).
    if os.environ.get("BLACKOUT_SWARM_TESTS") != "1":
        return "the Swarm lab's tests run in `make test-swarm` (BLACKOUT_SWARM_TESTS=1), not in `make test`"
    if os.geteuid() != 0:
        return "not root"
    for tool in ("dockerd", "docker", "ip", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"no {tool}"
    done = subprocess.run([DOCKER, "image", "inspect", image], capture_output=True, timeout=30)
    if done.returncode != 0:
        return f"no image {image} on the host's engine (run the docker lab's setup.sh; `make image`)"
    return ""


class Lab:
    def __init__(self, prefix: str, images: str = IMAGE) -> None:
        self.prefix = prefix
        self.env = {**os.environ, "SWARM_LAB_PREFIX": prefix, "SWARM_LAB_IMAGES": images}

    def script(self, command: str) -> str:
        done = subprocess.run(["bash", str(SCRIPT), command], env=self.env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"swarm-lab.sh {command} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def docker(self, node: str, *args: str) -> str:
        done = subprocess.run(
            [DOCKER, "--host", f"unix:///run/{self.prefix}/{node}.sock", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"docker {' '.join(args)} on {node}: {done.stderr}"
        return done.stdout.strip()

    def node_states(self) -> dict[str, tuple[str, str, str]]:
        """node name -> (status, availability, label dc)."""
        lines = self.docker("ctl", "node", "ls", "-q").split()
        found = {}
        for node_id in lines:
            name, state, availability, dc = self.docker(
                "ctl",
                "node",
                "inspect",
                node_id,
                "--format",
                '{{.Description.Hostname}}|{{.Status.State}}|{{.Spec.Availability}}|{{index .Spec.Labels "dc"}}',
            ).split("|")
            found[name] = (state, availability, dc)
        return found

    def leftovers(self) -> list[str]:
        """Whatever of this lab is still on the machine."""
        found = [
            f"netns {n}"
            for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if n.startswith(self.prefix)
        ]
        found += [f"dir {d}" for d in (Path(f"/run/{self.prefix}"), Path(f"/var/lib/{self.prefix}")) if d.exists()]
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if f"/run/{self.prefix}/" in cmdline:
                    found.append(f"process {proc.name}: {cmdline[:120]}")
        found += [f"cgroup {c}" for c in Path("/sys/fs/cgroup").glob(f"*/{self.prefix}-*")]
        found += [f"mount {line}" for line in Path("/proc/self/mounts").read_text().splitlines() if self.prefix in line]
        return found

    def cut(self, dc: str) -> None:
        """dc's power cut: every container of its engine SIGKILLed, its machine's link down."""
        running = self.docker(dc, "ps", "-q").split()
        if running:
            self.docker(dc, "kill", "-s", "KILL", *running)
        subprocess.run(["ip", "-n", f"{self.prefix}-{dc}", "link", "set", "lan0", "down"], check=True)


@contextmanager
def running_lab(images: str = IMAGE) -> Iterator[Lab]:
    """A lab of its own, torn down after; nothing of it may be left on the machine."""
    lab = Lab(f"bks{secrets.token_hex(3)}", images)
    try:
        yield lab
    finally:
        lab.script("down")
    assert lab.leftovers() == []


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s:g}s: {what}"
        time.sleep(0.2)
    return time.monotonic() - started
