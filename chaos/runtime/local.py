"""Local processes: every instance is an OS process; each data center's processes form one process group.

Power off = SIGKILL to the group: no graceful shutdown, no flushing. The runtime binds every listening
socket itself and hands it to the instance, keeping its own copy open: a powered-off port then accepts
connections that never get an answer (a dead host behind a live switch) instead of refusing them.
A topology port of 0 means "any": the runtime binds port 0 and rewrites the topology with the port it got,
so nothing can take a port between choosing and binding it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chaos.journal import EventName, Journal
from chaos.rundir import DATA_DIR, STATE_FILE
from chaos.runtime.base import InstanceRuntime, PowerEvent, RuntimeError_, keep_profile_copy
from chaos.runtime.forkserver import ForkedProcess, ForkServer
from chaos.runtime.pids import start_time
from chaos.runtime.sockets import bind, drop_queued_connections
from chaos.topology import Topology
from services.common.policy import Profile
from services.common.settings import TOKEN_SERVICES, dependencies_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_S = 5.0


class LocalRuntime(InstanceRuntime):
    name = "local"

    def __init__(
        self,
        topology: Topology,
        run_dir: Path,
        *,
        profile: Path | None = None,
        journal: Journal | None = None,
        health_timeout_s: float = 60.0,
    ) -> None:
        self.topology = topology
        self.run_dir = run_dir
        self.profile = profile
        self.journal = journal or Journal(run_dir)
        self.health_timeout_s = health_timeout_s
        self.token_secret = secrets.token_urlsafe(32)  # signs users' tokens
        self.admin_secret = secrets.token_urlsafe(32)  # opens the services' /admin routes: a different key
        self.service_key = secrets.token_urlsafe(32)  # services' calls to each other's internal routes
        self._sockets: dict[str, socket.socket] = {}
        self._procs: dict[str, subprocess.Popen[bytes] | ForkedProcess] = {}
        self._groups: dict[str, int] = {}
        self._started: dict[str, float | None] = {}  # instance -> its process's start time (pids are reused)
        self._lock = threading.RLock()
        # Every process is started from this one long-lived thread: PR_SET_PDEATHSIG fires when the
        # *thread* that forked a child ends, so a child started from a short-lived worker thread (a web
        # request, a scenario step) would be killed when that thread is reaped.
        self._spawner: ThreadPoolExecutor | None = None
        # Instances are forked from a warmed zygote where the OS can watch a child of another process
        # (pidfds, Linux); elsewhere each is a fresh interpreter.
        self._zygote: ForkServer | None = None
        self.use_zygote = hasattr(os, "pidfd_open") and os.environ.get("BLACKOUT_ZYGOTE", "1") != "0"

    # -- lifecycle -------------------------------------------------------------------------------
    def up(self) -> None:
        with self._lock:
            (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
            (self.run_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
            self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")
            if self.use_zygote:
                self._zygote = self._spawner.submit(ForkServer, self.run_dir / "logs" / "zygote.log").result()
            for name, (dc, inst) in self.topology.instances().items():
                self._sockets[name] = self._listen(dc, name, inst.port)
            self.topology = self.topology.with_ports(lambda name: self._sockets[name].getsockname()[1])
            for dc in self.topology.data_centers:
                self._start(dc, self.topology.names(dc))
            self._write_state()
        unhealthy = self._wait_healthy(list(self.topology.instances()))
        if unhealthy:
            raise RuntimeError_(unhealthy)
        self.journal.record(
            EventName.UP,
            topology=self.topology.name,
            pids=self._pids(),
            ports={n: i.port for n, (_, i) in self.topology.instances().items()},
        )

    def down(self) -> None:
        with self._lock:
            for dc in list(self._groups):
                self._stop_dc(dc)
            for sock in self._sockets.values():
                sock.close()
            self._sockets.clear()
            if self._zygote is not None:
                self._zygote.close()
                self._zygote = None
            if self._spawner is not None:
                self._spawner.shutdown(wait=True)
                self._spawner = None
            if self.journal.path.parent.exists():
                self._write_state()

    def power_off(self, dc: str) -> PowerEvent:
        self.topology.require_dc(dc)
        with self._lock:
            if dc not in self._groups:
                raise RuntimeError_(f"{dc} is already powered off")
            names = [n for n in self.topology.names(dc) if n in self._procs]
            started = time.monotonic()
            procs = [self._procs.pop(name) for name in names]
            _killpg(self._groups.pop(dc), procs, signal.SIGKILL)
            for proc in procs:
                proc.wait()
            event = PowerEvent(dc, "off", tuple(names), time.monotonic() - started)
            self.journal.record(EventName.POWER_OFF, dc=dc, instances=names, seconds=event.seconds)
            self._write_state()
            return event

    def kill_instance(self, name: str) -> PowerEvent:
        dc = self.topology.dc_of(name)
        with self._lock:
            proc = self._procs.pop(name, None)
            if proc is None:
                raise RuntimeError_(f"{name} is not running")
            started = time.monotonic()
            proc.kill()
            proc.wait()
            event = PowerEvent(dc, "kill", (name,), time.monotonic() - started)
            if not any(n in self._procs for n in self.topology.names(dc)):
                self._groups.pop(dc, None)  # the last of its data center: the group is gone
            self.journal.record(EventName.KILL_INSTANCE, dc=dc, instance=name, pid=proc.pid, seconds=event.seconds)
            self._write_state()
            return event

    def status(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            result = {}
            for name, (dc, inst) in self.topology.instances().items():
                proc = self._procs.get(name)
                state = "powered-off" if proc is None else ("running" if proc.poll() is None else "exited")
                result[name] = {
                    "dc": dc,
                    "service": inst.service,
                    "port": inst.port,
                    "state": state,
                    "pid": proc.pid if proc else None,
                }
            return result

    def powered(self) -> dict[str, bool]:
        with self._lock:
            return {dc: dc in self._groups for dc in self.topology.data_centers}

    def _pids(self, names: list[str] | None = None) -> dict[str, int]:
        return {name: self._procs[name].pid for name in (names or list(self._procs)) if name in self._procs}

    # -- what the shared power-on, start and health wait need (chaos.runtime.base.InstanceRuntime) ----
    def _boot(self, dc: str, names: list[str]) -> None:
        self._start(dc, names)
        self._write_state()

    def _lit(self, dc: str) -> bool:
        return dc in self._groups

    def _running(self, name: str) -> bool:
        return name in self._procs

    def _keep_profile(self, profile: Profile) -> None:
        self.profile = keep_profile_copy(self.run_dir, profile)

    def _facts(self, names: list[str]) -> dict[str, object]:
        return {"pids": self._pids(names)}

    def _failed_while_starting(self, names: list[str]) -> str:
        with self._lock:
            procs = {name: self._procs.get(name) for name in names}
        if dark := sorted(name for name, proc in procs.items() if proc is None):
            return f"{', '.join(dark)} lost power again while starting"
        # Every instance that exited, not only the first: one that dies can take its data center's
        # process group with it, and the next to start then fails only because the group is gone.
        return "\n".join(
            f"{name} exited with code {proc.returncode} while starting; its log:\n{self._log_tail(name)}"
            for name, proc in sorted(procs.items())
            if proc is not None and proc.poll() is not None
        )

    # -- internals -------------------------------------------------------------------------------
    def _listen(self, dc: str, name: str, port: int) -> socket.socket:
        """The listening socket the runtime holds for ``name`` (a subclass may bind it elsewhere)."""
        return bind(name, port, self.topology.address(dc))

    def _namespace(self, dc: str) -> Path | None:
        """The network namespace ``dc``'s processes join (None: this process's own)."""
        return None

    def _start(self, dc: str, names: list[str]) -> None:
        """Start ``names`` in ``dc``'s process group (a new group when the data center has none)."""
        assert self._spawner is not None, "the runtime is not up"
        if not self._living(dc):
            self._groups.pop(dc, None)  # its processes all died on their own: the group, and its number, are gone
        for name in names:
            # Right before this instance boots, not when its data center's power returns: with a boot
            # order, what queued during the stagger is as stale as what queued in the dark.
            drop_queued_connections(self._sockets[name])
            group = self._groups.get(dc, 0)
            proc = self._spawner.submit(self._spawn, dc, name, group).result()
            self._procs[name] = proc
            self._started[name] = start_time(proc.pid)
            self._groups.setdefault(dc, proc.pid)  # the first process leads the group; the others join it

    def _living(self, dc: str) -> list[subprocess.Popen[bytes] | ForkedProcess]:
        return [proc for name, proc in self._procs.items() if self.topology.dc_of(name) == dc and proc.poll() is None]

    def _spawn(self, dc: str, name: str, group: int) -> subprocess.Popen[bytes] | ForkedProcess:
        inst = self.topology.instances()[name][1]
        sock = self._sockets[name]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BLACKOUT_SERVICE": inst.service,
            "BLACKOUT_INSTANCE": name,
            "BLACKOUT_DC": dc,
            "BLACKOUT_HOST": self.topology.address(dc),
            "BLACKOUT_PORT": str(inst.port),
            "BLACKOUT_LISTEN_FD": str(sock.fileno()),
            "BLACKOUT_DATA_DIR": str(self.run_dir / DATA_DIR),
            "BLACKOUT_DEPENDENCIES": dependencies_env(self.topology.dependency_urls(name)),
            "BLACKOUT_ADMIN_SECRET": self.admin_secret,
            "BLACKOUT_SERVICE_KEY": self.service_key,
            "BLACKOUT_SUPERVISOR_PID": str(os.getpid()),
        }
        if inst.service in TOKEN_SERVICES:
            env["BLACKOUT_TOKEN_SECRET"] = self.token_secret
        else:  # not inherited from our own environment either
            env.pop("BLACKOUT_TOKEN_SECRET", None)
        if self.profile is not None:
            env["BLACKOUT_PROFILE"] = str(self.profile)
        log_path = self.run_dir / "logs" / f"{name}.log"
        if self._zygote is not None:
            return self._zygote.spawn(env, sock.fileno(), log_path, group, self._namespace(dc))
        with log_path.open("ab") as log:
            return subprocess.Popen[bytes](
                [sys.executable, "-m", "services.common.runner"],
                env=env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
                process_group=group,
            )

    def _stop_dc(self, dc: str) -> None:
        group = self._groups.pop(dc)
        procs = [self._procs.pop(name) for name in self.topology.names(dc) if name in self._procs]
        _killpg(group, procs, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _killpg(group, procs, signal.SIGKILL)
                proc.wait()

    def _log_tail(self, name: str, lines: int = 15) -> str:
        path = self.run_dir / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def _write_state(self) -> None:
        # Every pid with its start time: whoever reads this later can tell the process from one that got its pid.
        state = {
            "supervisor_pid": os.getpid(),
            "supervisor_started": start_time(os.getpid()),
            "topology": self.topology.name,
            "groups": self._groups,
            "instances": {
                name: {**info, "started": self._started.get(name) if info["pid"] else None}
                for name, info in self.status().items()
            },
        }
        (self.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2))


def _killpg(group: int, members: list[subprocess.Popen[bytes] | ForkedProcess], sig: signal.Signals) -> None:
    """Signal a data center's process group while one of its members lives. A group whose processes all died
    is gone, and its number may be another process's group by now: signalling it could kill a stranger."""
    if not any(proc.poll() is None for proc in members):
        return
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass  # the last of them died just now
