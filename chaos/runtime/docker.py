"""Containers: every instance is a container (one image, host networking) labelled with its data center.

Power off = SIGKILL to every container of the data center at once (one thread each), timed until Docker
reports them all stopped. Power on = start them again in the boot order. Containers are created with
``restart: no``, so Docker never brings a killed data center back behind the controller's back.

A dead port hangs, as in the local runtime: the runtime binds every listening socket (port 0 in tests, so
no port is chosen and bound later) and hands it to the container over an abstract Unix socket
(chaos/runtime/handoff.py), keeping its own copy. A powered-off data center's ports accept connections that
never answer (timeouts, not "connection refused"), with no window between the kill and a stand-in bind. At
power-on a port acts like a booting host's: connections are reset until the instance's process takes its
socket (see ``_refuse_while_booting``).

Every container carries ``blackout.run=<run id>``: `down`, Ctrl-C and the tests remove exactly those. A runtime
that was killed (SIGKILL) removes nothing: the next `up` on this host sweeps its containers (their owner's pid and
start time name a process that is gone). Host networking creates no network, so there is none to remove.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from chaos.journal import EventName, Journal
from chaos.rundir import ACTIVE_PROFILE, DATA_DIR
from chaos.runtime.base import InstanceRuntime, PowerEvent, RuntimeError_, keep_profile_copy
from chaos.runtime.docker_engine import Engine
from chaos.runtime.handoff import SocketHandoff
from chaos.runtime.sockets import bind, drop_queued_connections
from chaos.topology import Topology
from services.common.policy import Profile
from services.common.settings import TOKEN_SERVICES, dependencies_env

IMAGE = os.environ.get("BLACKOUT_IMAGE", "blackout:latest")
# Per service: ~4x what an instance uses after serving (about 60 MiB, benchmarks/cold_start.py), except auth: each
# login's scrypt takes 16 MiB and runs in a threadpool of 40, so a login burst needs ~700 MiB (256m got it
# OOM-killed under the test's 10 users, a death no scenario asked for).
MEMORY_LIMITS = {"auth": "1g", "views": "256m", "earnings": "256m", "recommender": "256m", "gateway": "256m"}
INSPECT_EVERY_S = 0.5  # asking Docker whether a container exited costs more than a /healthz


class DockerRuntime(InstanceRuntime):
    name = "docker"

    def __init__(
        self,
        topology: Topology,
        run_dir: Path,
        *,
        profile: Path | None = None,
        journal: Journal | None = None,
        health_timeout_s: float = 60.0,
        image: str = IMAGE,
        memory: dict[str, str] | None = None,
    ) -> None:
        self.topology = topology
        self.run_dir = run_dir.resolve()  # mounted at the same path in every container
        self.profile = profile
        self.journal = journal or Journal(run_dir)
        self.health_timeout_s = health_timeout_s
        self.image, self.memory = image, {**MEMORY_LIMITS, **(memory or {})}
        self.run_id = f"{run_dir.name[-40:]}-{secrets.token_hex(4)}"
        self.token_secret = secrets.token_urlsafe(32)
        self.admin_secret = secrets.token_urlsafe(32)
        self.service_key = secrets.token_urlsafe(32)
        self.engine: Engine | None = None
        self._sockets: dict[str, Any] = {}
        self._handoff: SocketHandoff | None = None
        self._dark: set[str] = set(topology.data_centers)  # data centers without power (all, until up)
        self._pids: dict[str, int] = {}
        self._next_inspect = 0.0  # when a health wait next asks Docker whether a booting container exited
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------------
    def up(self) -> None:
        with self._lock:
            self.engine = Engine.connect(self.run_id)  # clear error when no engine answers
            self.engine.require_image(self.image)
            (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
            (self.run_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
            swept = self.engine.sweep_orphans()  # left by a runtime that was killed: they may hold ports
            if swept:
                self.journal.record(EventName.SWEPT, runtime="docker", containers=swept)
            for name, (_, inst) in self.topology.instances().items():
                self._sockets[name] = bind(name, inst.port)
            self.topology = self.topology.with_ports(lambda name: self._sockets[name].getsockname()[1])
            self._write_profile(self.profile.read_text() if self.profile else None)
            self._handoff = SocketHandoff(f"blackout-{self.run_id}", self.admin_secret, self._sockets)
            for name in self.topology.instances():
                memory = self.memory[self.topology.instances()[name][1].service]
                self.engine.create(name, self.image, self._labels(name), self._env(name), memory, self.run_dir)
            for dc in self.topology.data_centers:
                self._start(self.topology.names(dc))
                self._dark.discard(dc)
        unhealthy = self._wait_healthy(list(self.topology.instances()))
        if unhealthy:
            raise RuntimeError_(unhealthy)
        self.journal.record(
            EventName.UP,
            topology=self.topology.name,
            runtime="docker",
            run_id=self.run_id,
            pids=dict(self._pids),
            ports={n: i.port for n, (_, i) in self.topology.instances().items()},
        )

    def down(self) -> None:
        with self._lock:
            if self.engine is not None:
                removed = self.engine.remove_all(self.run_dir / "logs")
                self.journal.record(EventName.DOWN, runtime="docker", run_id=self.run_id, removed=removed)
                self.engine.close()
                self.engine = None
            if self._handoff is not None:
                self._handoff.close()
                self._handoff = None
            for sock in self._sockets.values():
                sock.close()
            self._sockets.clear()
            self._dark = set(self.topology.data_centers)

    def power_off(self, dc: str) -> PowerEvent:
        self.topology.require_dc(dc)
        with self._lock:
            if dc in self._dark:
                raise RuntimeError_(f"{dc} is already powered off")
            names = self.topology.names(dc)
            self._dark.add(dc)
            seconds = self._engine().kill(names)
            self._cut(names)
        event = PowerEvent(dc, "off", tuple(names), seconds)
        self.journal.record(EventName.POWER_OFF, dc=dc, instances=names, seconds=seconds, runtime="docker")
        return event

    def kill_instance(self, name: str) -> PowerEvent:
        dc = self.topology.dc_of(name)
        with self._lock:
            if dc in self._dark or name not in self._pids:
                raise RuntimeError_(f"{name} is not running")
            seconds = self._engine().kill([name])
            self._cut([name])
            if not any(n in self._pids for n in self.topology.names(dc)):
                self._dark.add(dc)  # the last of its data center
        self.journal.record(EventName.KILL_INSTANCE, dc=dc, instance=name, seconds=seconds, runtime="docker")
        return PowerEvent(dc, "kill", (name,), seconds)

    def powered(self) -> dict[str, bool]:
        with self._lock:
            return {dc: dc not in self._dark for dc in self.topology.data_centers}

    def status(self) -> dict[str, dict[str, Any]]:
        states = self.engine.states() if self.engine is not None else {}
        with self._lock:
            result = {}
            for name, (dc, inst) in self.topology.instances().items():
                running = states.get(name) == "running"
                state = "running" if running else ("powered-off" if name not in self._pids else "exited")
                result[name] = {
                    "dc": dc,
                    "service": inst.service,
                    "port": inst.port,
                    "state": state,
                    "pid": self._pids.get(name) if running else None,
                }
            return result

    # -- what the shared power-on, start and health wait need (chaos.runtime.base.InstanceRuntime) ----
    def _boot(self, dc: str, names: list[str]) -> None:
        for name in names:
            drop_queued_connections(self._sockets[name])  # what queued in the dark is stale
        self._dark.discard(dc)
        self._start(names)

    def _lit(self, dc: str) -> bool:
        return dc not in self._dark

    def _running(self, name: str) -> bool:
        return name in self._pids

    def _keep_profile(self, profile: Profile) -> None:
        self._write_profile(keep_profile_copy(self.run_dir, profile).read_text())

    def _facts(self, names: list[str]) -> dict[str, object]:
        return {"runtime": "docker"}

    def _logs_hint(self) -> str:
        return "docker logs"

    def _answering(self, name: str) -> bool:
        with self._lock:
            return not self._refuse_while_booting(name)

    def _failed_while_starting(self, names: list[str]) -> str:
        with self._lock:
            if dark := [name for name in names if name not in self._pids]:
                return f"{dark[0]} lost power again while starting"
        if self.engine is None or time.monotonic() < self._next_inspect:
            return ""
        self._next_inspect = time.monotonic() + INSPECT_EVERY_S
        for name in names:
            exited = self.engine.exited(name)
            if exited is not None:
                return f"{name} exited with code {exited} while starting; its log:\n{self.engine.log_tail(name)}"
        return ""

    # -- internals -------------------------------------------------------------------------------
    def _engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError_("the docker runtime is not up")
        return self.engine

    def _start(self, names: list[str]) -> None:
        self._pids.update(self._engine().start(names))

    def _cut(self, names: list[str]) -> None:
        for name in names:
            self._pids.pop(name, None)
        if self._handoff is not None:
            self._handoff.cut(names)

    def _refuse_while_booting(self, name: str) -> bool:
        """Until the instance's process has taken its socket (it asks once its app is built), reset whatever
        queued: a booting host whose service is not listening yet refuses. Without this, the seconds a container
        takes to import its code fill the backlog with retries (naive gateways send hundreds), and a fresh auth
        drowns in a queue of logins it accepts all at once, answering nothing, health checks included."""
        if self._handoff is None or self._handoff.handed(name):
            return False
        drop_queued_connections(self._sockets[name])
        return True

    def _labels(self, name: str) -> dict[str, str]:
        dc, inst = self.topology.instances()[name]
        return {"blackout.dc": dc, "blackout.instance": name, "blackout.service": inst.service}

    def _env(self, name: str) -> dict[str, str]:
        dc, inst = self.topology.instances()[name]
        return {
            "BLACKOUT_SERVICE": inst.service,
            "BLACKOUT_INSTANCE": name,
            "BLACKOUT_DC": dc,
            "BLACKOUT_PORT": str(inst.port),
            "BLACKOUT_HANDOFF": f"blackout-{self.run_id}",
            "BLACKOUT_DATA_DIR": str(self.run_dir / DATA_DIR),
            "BLACKOUT_DEPENDENCIES": dependencies_env(self.topology.dependency_urls(name)),
            "BLACKOUT_ADMIN_SECRET": self.admin_secret,
            "BLACKOUT_SERVICE_KEY": self.service_key,
            **({"BLACKOUT_TOKEN_SECRET": self.token_secret} if inst.service in TOKEN_SERVICES else {}),
            **({"BLACKOUT_PROFILE": str(self.run_dir / ACTIVE_PROFILE)} if self.profile else {}),
        }

    def _write_profile(self, text: str | None) -> None:
        if text is None:
            return
        partial = self.run_dir / (ACTIVE_PROFILE + ".tmp")
        partial.write_text(text)
        partial.replace(self.run_dir / ACTIVE_PROFILE)  # a container starting now never reads half a file
        self.profile = self.run_dir / ACTIVE_PROFILE
