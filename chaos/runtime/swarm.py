"""Data centers as machines of a Docker Swarm (docker/swarm-lab.sh): the topology deployed as a stack placed by
node label, each data center on its own node with its own address.

Power off = every container of the data center's node SIGKILLed (through that node's engine) and the node's link
cut: its addresses stop answering (callers time out, as with a dead host) and the Swarm manager, no longer
hearing the node, marks it down some 13 s later (docs/swarm.md). Power on = the link back, then a new task for
each of the data center's services (``docker service update --force``), in the boot order. The stack's
``restart_policy: none`` means Swarm never restarts a killed task behind the controller's back.

The controller runs inside the lab's manager namespace (`make outage RUNTIME=swarm` puts it there), from where
every node's address is reachable; the host's own network is never touched. A controller that dies without
`down` (a SIGKILL): its watcher, or the next `up`, removes its stack (chaos/runtime/swarm_owner.py).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from chaos.journal import EventName, Journal
from chaos.rundir import ACTIVE_PROFILE, DATA_DIR
from chaos.runtime import swarm_owner, watcher
from chaos.runtime.base import KILL, LINKS, POWER, InstanceRuntime, PowerEvent, RuntimeError_, keep_profile_copy
from chaos.runtime.docker import IMAGE
from chaos.runtime.docker_engine import OWNER_LABEL, OWNER_STARTED_LABEL
from chaos.runtime.pids import start_time
from chaos.runtime.swarm_owner import MANAGER, STACK_LABEL
from chaos.runtime.swarm_stack import stack_document
from chaos.topology import Topology
from services.common.policy import Profile

LAB_PREFIX = os.environ.get("SWARM_LAB_PREFIX", "bkswarm")  # docker/swarm-lab.sh's


class SwarmRuntime(InstanceRuntime):
    name = "swarm"
    capabilities = frozenset({POWER, KILL, LINKS})
    HEALTH_POLL_S = 0.2  # each task's address is another machine's: no need to poll as often as a local fork

    def __init__(
        self,
        topology: Topology,
        run_dir: Path,
        *,
        profile: Path | None = None,
        journal: Journal | None = None,
        health_timeout_s: float = 120.0,
        image: str = IMAGE,
        prefix: str = LAB_PREFIX,
    ) -> None:
        self.topology = topology
        self.run_dir = run_dir.resolve()  # mounted at the same path in every task
        self.profile = profile
        self.journal = journal or Journal(run_dir)
        self.health_timeout_s = health_timeout_s
        self.image, self.prefix = image, prefix
        self.stack = f"bo{secrets.token_hex(4)}"
        self.token_secret = secrets.token_urlsafe(32)
        self.admin_secret = secrets.token_urlsafe(32)
        self.service_key = secrets.token_urlsafe(32)
        self._dark: set[str] = set(topology.data_centers)
        self._killed: set[str] = set()
        self._deployed = False
        self._watcher: subprocess.Popen[bytes] | None = None  # cleans up if this process dies without `down`
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------------
    def up(self) -> None:
        with self._lock:
            for node in (MANAGER, *self.topology.data_centers):
                if not Path(f"/run/{self.prefix}/{node}.sock").exists():
                    raise RuntimeError_(
                        f"no swarm lab engine for '{node}' (/run/{self.prefix}/{node}.sock): start the lab with "
                        "`bash docker/swarm-lab.sh up` (make outage RUNTIME=swarm does)"
                    )
            (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
            (self.run_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
            swept = swarm_owner.sweep(self.prefix, list(self.topology.data_centers))
            if swept:
                self.journal.record(EventName.SWEPT, runtime="swarm", stacks=swept)
            addresses = {
                dc: self._docker(dc, "info", "--format", "{{.Swarm.NodeAddr}}") for dc in self.topology.data_centers
            }
            self.topology = self.topology.with_addresses(addresses)
            if self.profile is not None:
                self._write_profile(self.profile.read_text())
            credentials = {
                "BLACKOUT_TOKEN_SECRET": self.token_secret,
                "BLACKOUT_ADMIN_SECRET": self.admin_secret,
                "BLACKOUT_SERVICE_KEY": self.service_key,
            }
            me, started = os.getpid(), start_time(os.getpid()) or 0.0
            owner = {OWNER_LABEL: f"{os.uname().nodename}:{me}", OWNER_STARTED_LABEL: repr(started)}
            document = stack_document(
                self.topology,
                self.image,
                self.run_dir,
                credentials,
                f"{os.getuid()}:{os.getgid()}",
                self.profile,
                owner,
            )
            stack_file = self.run_dir / "swarm-stack.yml"
            stack_file.touch(mode=0o600)  # it holds the stack's credentials
            stack_file.write_text(yaml.safe_dump(document, sort_keys=False, width=200))
            self._watcher = watcher.start(
                "chaos.runtime.swarm_owner",
                [self.prefix, self.stack, str(me), repr(started), *self.topology.data_centers],
                self.run_dir / "logs" / "swarm-watcher.log",
            )
            self._deployed = True
            self._docker(MANAGER, "stack", "deploy", "--compose-file", str(stack_file), self.stack)
            self._dark.clear()
        unhealthy = self._wait_healthy(list(self.topology.instances()))
        if unhealthy:
            raise RuntimeError_(unhealthy)
        self.journal.record(
            EventName.UP, topology=self.topology.name, runtime="swarm", stack=self.stack, addresses=addresses
        )

    def down(self) -> None:
        with self._lock:
            if self._deployed:
                for dc in self.topology.data_centers:
                    self._link(dc, up=True)  # the lab outlives the run: leave its machines connected
                self._save_logs()
                swarm_owner.remove_stack(self.prefix, self.stack, list(self.topology.data_centers))
                self.journal.record(EventName.DOWN, runtime="swarm", stack=self.stack)
                self._deployed = False
            if self._watcher is not None:
                watcher.stop(self._watcher)
                self._watcher = None
            self._dark = set(self.topology.data_centers)

    def power_off(self, dc: str) -> PowerEvent:
        self.topology.require_dc(dc)
        with self._lock:
            if dc in self._dark:
                raise RuntimeError_(f"{dc} is already powered off")
            self._dark.add(dc)
            started = time.monotonic()
            self._link(dc, up=False)
            self._kill(dc, self.topology.names(dc))
            seconds = time.monotonic() - started
        names = self.topology.names(dc)
        self.journal.record(EventName.POWER_OFF, dc=dc, instances=names, seconds=seconds, runtime="swarm")
        return PowerEvent(dc, "off", tuple(names), seconds)

    def kill_instance(self, name: str) -> PowerEvent:
        dc = self.topology.dc_of(name)
        with self._lock:
            if dc in self._dark or name in self._killed:
                raise RuntimeError_(f"{name} is not running")
            started = time.monotonic()
            self._kill(dc, [name])
            seconds = time.monotonic() - started
        self.journal.record(EventName.KILL_INSTANCE, dc=dc, instance=name, seconds=seconds, runtime="swarm")
        return PowerEvent(dc, "kill", (name,), seconds)

    def powered(self) -> dict[str, bool]:
        with self._lock:
            return {dc: dc not in self._dark for dc in self.topology.data_centers}

    def status(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            result = {}
            for name, (dc, inst) in self.topology.instances().items():
                state = "powered-off" if dc in self._dark else ("exited" if name in self._killed else "running")
                result[name] = {"dc": dc, "service": inst.service, "port": inst.port, "state": state, "pid": None}
            return result

    # -- what InstanceRuntime asks of a runtime ---------------------------------------------------
    def _boot(self, dc: str, names: list[str]) -> None:
        if dc in self._dark:
            self._link(dc, up=True)
            self._dark.discard(dc)
        self._start(names)

    def _lit(self, dc: str) -> bool:
        return dc not in self._dark

    def _running(self, name: str) -> bool:
        return self._lit(self.topology.dc_of(name)) and name not in self._killed

    def _failed_while_starting(self, names: list[str]) -> str:
        with self._lock:
            dark = [name for name in names if not self._lit(self.topology.dc_of(name))]
        return f"{dark[0]} lost power again while starting" if dark else ""

    def _keep_profile(self, profile: Profile) -> None:
        self._write_profile(keep_profile_copy(self.run_dir, profile).read_text())

    def _facts(self, names: list[str]) -> dict[str, object]:
        return {"runtime": "swarm"}

    def _logs_hint(self) -> str:
        return f"docker --host unix:///run/{self.prefix}/{MANAGER}.sock stack ps {self.stack}"

    # -- internals -------------------------------------------------------------------------------
    def _docker(self, node: str, *args: str, check: bool = True) -> str:
        return swarm_owner.docker(self.prefix, node, *args, check=check)

    def _containers(self, dc: str, names: list[str]) -> list[str]:
        """The running containers of these instances on the data center's node."""
        found = []
        for name in names:
            found += self._docker(
                dc,
                "ps",
                "-q",
                "--filter",
                f"label={STACK_LABEL}={self.stack}",
                "--filter",
                f"label=blackout.instance={name}",
            ).split()
        return found

    def _kill(self, dc: str, names: list[str]) -> None:
        """SIGKILL through the node's own engine (its socket: the cut link does not stand in the way)."""
        containers = self._containers(dc, names)
        if containers:
            self._docker(dc, "kill", "--signal", "KILL", *containers, check=False)  # one may have died by itself
        self._killed.update(names)

    def _start(self, names: list[str]) -> None:
        """A new task for each service: its restart policy is none, so a killed task stays dead until asked."""
        for name in names:
            self._docker(MANAGER, "service", "update", "--detach", "--force", f"{self.stack}_{name}")
            self._killed.discard(name)

    def _link(self, dc: str, up: bool) -> None:
        swarm_owner.set_link(self.prefix, dc, up)

    def _save_logs(self) -> None:
        for name in self.topology.instances():
            log = self._docker(
                MANAGER, "service", "logs", "--raw", "--tail", "2000", f"{self.stack}_{name}", check=False
            )
            (self.run_dir / "logs" / f"{name}.log").write_text(log)

    def _write_profile(self, text: str) -> None:
        partial = self.run_dir / (ACTIVE_PROFILE + ".tmp")
        partial.write_text(text)
        partial.replace(self.run_dir / ACTIVE_PROFILE)  # a task starting now never reads half a file
        self.profile = self.run_dir / ACTIVE_PROFILE
