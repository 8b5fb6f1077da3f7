"""Local processes: every instance is an OS process; each data center's processes form one process group.

Power off = SIGKILL to the group: no graceful shutdown, no flushing. The runtime binds every listening
socket itself and hands it to the instance, keeping its own copy open: a powered-off port then accepts
connections that never get an answer (a dead host behind a live switch) instead of refusing them.
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
from pathlib import Path

import httpx

import yaml

from chaos.journal import Journal
from chaos.runtime.base import PowerEvent, Runtime, RuntimeError_, push_profile
from chaos.topology import Topology
from services.common.policy import Profile
from services.common.settings import dependencies_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_S = 5.0


class LocalRuntime(Runtime):
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
        self.secret = secrets.token_urlsafe(32)
        self.admin_secret = secrets.token_urlsafe(32)  # opens the services' /admin routes: a different key
        self._sockets: dict[str, socket.socket] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._groups: dict[str, int] = {}
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------------
    def up(self) -> None:
        with self._lock:
            (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
            (self.run_dir / "data").mkdir(parents=True, exist_ok=True)
            for name, (_, inst) in self.topology.instances().items():
                self._sockets[name] = _bind(name, inst.port)
            for dc in self.topology.data_centers:
                self._start_dc(dc)
            self._write_state()
            self._wait_healthy(list(self.topology.instances()))
            self.journal.record("up", topology=self.topology.name, pids=self._pids())

    def down(self) -> None:
        with self._lock:
            for dc in list(self._groups):
                self._stop_dc(dc)
            for sock in self._sockets.values():
                sock.close()
            self._sockets.clear()
            if self.journal.path.parent.exists():
                self._write_state()

    def power_off(self, dc: str) -> PowerEvent:
        self.topology.require_dc(dc)
        with self._lock:
            if dc not in self._groups:
                raise RuntimeError_(f"{dc} is already powered off")
            names = self._names(dc)
            started = time.monotonic()
            _killpg(self._groups.pop(dc), signal.SIGKILL)
            for name in names:
                self._procs.pop(name).wait()
            event = PowerEvent(dc, "off", tuple(names), time.monotonic() - started)
            self.journal.record("power-off", dc=dc, instances=names, seconds=event.seconds)
            self._write_state()
            return event

    def power_on(self, dc: str) -> PowerEvent:
        self.topology.require_dc(dc)
        with self._lock:
            if dc in self._groups:
                raise RuntimeError_(f"{dc} is already powered on")
            started = time.monotonic()
            self._start_dc(dc)
            self._write_state()
            self._wait_healthy(self._names(dc))
            event = PowerEvent(dc, "on", tuple(self._names(dc)), time.monotonic() - started)
            self.journal.record("power-on", dc=dc, seconds=event.seconds, pids=self._pids(dc))
            return event

    def status(self) -> dict[str, dict]:
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

    def switch_profile(self, profile: Profile) -> dict[str, str]:
        """Swap every running instance's profile live; instances powered on later start with it too."""
        with self._lock:
            path = self.run_dir / f"profile-{profile.name}.yaml"
            path.write_text(yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False))
            self.profile = path
            running = [name for name, info in self.status().items() if info["state"] == "running"]
            results = push_profile({name: self.topology.url(name) for name in running}, self.admin_secret, profile)
            self.journal.record("profile", profile=profile.name, results=results)
            return results

    def _pids(self, dc: str | None = None) -> dict[str, int]:
        names = self._names(dc) if dc else list(self._procs)
        return {name: self._procs[name].pid for name in names}

    # -- internals -------------------------------------------------------------------------------
    def _names(self, dc: str) -> list[str]:
        return list(self.topology.data_centers[dc].instances)

    def _start_dc(self, dc: str) -> None:
        group = 0  # the first process leads a new group; the others join it
        for name in self._names(dc):
            inst = self.topology.instances()[name][1]
            sock = self._sockets[name]
            env = {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "BLACKOUT_SERVICE": inst.service,
                "BLACKOUT_INSTANCE": name,
                "BLACKOUT_DC": dc,
                "BLACKOUT_PORT": str(inst.port),
                "BLACKOUT_LISTEN_FD": str(sock.fileno()),
                "BLACKOUT_DATA_DIR": str(self.run_dir / "data"),
                "BLACKOUT_DEPENDENCIES": dependencies_env(self.topology.dependency_urls(name)),
                "BLACKOUT_TOKEN_SECRET": self.secret,
                "BLACKOUT_ADMIN_SECRET": self.admin_secret,
                "BLACKOUT_SUPERVISOR_PID": str(os.getpid()),
            }
            if self.profile is not None:
                env["BLACKOUT_PROFILE"] = str(self.profile)
            with (self.run_dir / "logs" / f"{name}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "services.common.runner"],
                    env=env,
                    cwd=PROJECT_ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(sock.fileno(),),
                    process_group=group,
                )
            self._procs[name] = proc
            group = group or proc.pid
        self._groups[dc] = group

    def _stop_dc(self, dc: str) -> None:
        group = self._groups.pop(dc)
        _killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for name in self._names(dc):
            proc = self._procs.pop(name, None)
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _killpg(group, signal.SIGKILL)
                proc.wait()

    def _wait_healthy(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.health_timeout_s
        pending = set(names)
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for name in sorted(pending):
                    proc = self._procs[name]
                    if proc.poll() is not None:
                        raise RuntimeError_(
                            f"{name} exited with code {proc.returncode} while starting; its log:\n{self._log_tail(name)}"
                        )
                    try:
                        if client.get(self.topology.url(name) + "/healthz").status_code == 200:
                            pending.discard(name)
                    except httpx.HTTPError:
                        pass
                if not pending:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError_(
                        f"not healthy within {self.health_timeout_s:g}s: {', '.join(sorted(pending))} "
                        f"(logs in {self.run_dir / 'logs'})"
                    )
                time.sleep(0.1)  # poll interval

    def _log_tail(self, name: str, lines: int = 15) -> str:
        path = self.run_dir / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def _write_state(self) -> None:
        state = {
            "supervisor_pid": os.getpid(),
            "topology": self.topology.name,
            "groups": self._groups,
            "instances": self.status(),
        }
        (self.run_dir / "state.json").write_text(json.dumps(state, indent=2))


def _bind(name: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise RuntimeError_(
            f"port {port} for {name} is taken ({exc.strerror}): is another Blackout running? try `blackout down`"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _killpg(group: int, sig: signal.Signals) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass  # the whole group is already gone
