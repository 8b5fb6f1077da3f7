"""Locust as child processes: headless, bounded in time, recording what users saw into the run directory.

One locust, or (many users) locust's distributed mode: a master and one worker per core, so the load
generator is never the bottleneck. Either way the run follows a control file (``loadtest.control``):
``set_load`` changes users, spawn rate and the edge settings of a running load, live.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from chaos.rundir import LOAD_CONTROL_FILE, LOCUST_LOG, MASTER_FILE, REQUESTS_FILE
from chaos.runtime.base import RuntimeError_
from loadtest.control import CONTROL_ENV, DEMO_THINK_S, LoadControl, write_control
from loadtest.metrics import PORT_ENV as METRICS_PORT_ENV
from loadtest.requests_reader import RequestsReader
from services.common.accounts import MAX_USERS, account
from services.common.errors import UsageError
from services.common.lifeline import SUPERVISOR_ENV

LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadtest" / "locustfile.py"
# Users arrive at this rate unless told otherwise: a realistic ramp, not a login storm. Each login is
# ~55 ms of scrypt: 20 at once queue for over a second on auth, and a naive stack (1 s timeouts, immediate
# retries, users logged out when auth is slow) never comes back from that (the retry-storm scenario).
DEFAULT_SPAWN_RATE = 5.0
# One locust process drives this many users at the demo's ~1 action/s with under half a core: a worker
# spends 0.68 ms of CPU per action (FastHttpUser; docs/benchmarks.md, load_generator), 700 x 0.68 ms = 0.48
# core. More users: locust's master + one worker per core, rather than one process whose event loop falls
# behind its users (their requests wait for it, and what they record as latency is the generator's).
DISTRIBUTED_ABOVE = 700
START_TIMEOUT_S = 30.0
# How long a run waits, beyond the ramp, for every user's first request (its login).
LOGIN_WAIT_S = 60.0
# After the scenario's planned length: a step that overran, the last window's checks, the rollbacks.
LIMIT_MARGIN_S = 120.0


def load_limit(users: int, spawn_rate: float | None, scenario_s: float) -> float:
    """How long locust may run (its own stop, should nothing stop it first) for a scenario of
    ``scenario_s``: the users' arrival (users / spawn rate: 1,000 at 5/s take 200 s), the wait for
    their logins, the scenario, and a margin. The scenario only starts once every user is in."""
    return users / (spawn_rate or DEFAULT_SPAWN_RATE) + LOGIN_WAIT_S + scenario_s + LIMIT_MARGIN_S


class LoadGenerator:
    def __init__(
        self,
        run_dir: Path,
        gateways: dict[str, str],
        users: int,
        max_seconds: float,
        edge_failover: bool = False,
        client_attempts: int = 1,
        spawn_rate: float | None = None,
        workers: int | None = None,
        seed: int | None = None,
        think_s: tuple[float, float] | None = None,
    ) -> None:
        """``workers``: None picks (one per core above DISTRIBUTED_ABOVE users, else none); 0: one locust.
        ``think_s``: each user's pause after an action, (min, max) seconds; None: the demo's ~1 s."""
        if not 1 <= users <= MAX_USERS:
            raise UsageError(f"users must be 1..{MAX_USERS}, got {users}")
        self.run_dir = run_dir
        self.seed = seed  # each user's action choices: the same seed repeats the same choices
        self.gateways = gateways
        self.max_seconds = max_seconds
        self.workers = workers if workers is not None else (os.cpu_count() or 1) if users > DISTRIBUTED_ABOVE else 0
        self.control_path = run_dir / LOAD_CONTROL_FILE
        try:
            self.control = LoadControl(
                users=users,
                spawn_rate=spawn_rate or DEFAULT_SPAWN_RATE,
                edge_failover=edge_failover,
                client_attempts=client_attempts,
                max_seconds=max_seconds,
                think_s=think_s or DEMO_THINK_S,
            )
        except ValueError as exc:
            raise UsageError(f"load generator: {exc}") from None
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None  # the master, or the one locust
        self.worker_procs: list[subprocess.Popen[bytes]] = []

    @property
    def users(self) -> int:
        return self.control.users

    @property
    def edge_failover(self) -> bool:
        return self.control.edge_failover

    @property
    def client_attempts(self) -> int:
        return self.control.client_attempts

    @property
    def drained(self) -> dict[str, float]:
        return dict(self.control.drained)

    def set_load(
        self,
        users: int | None = None,
        spawn_rate: float | None = None,
        edge_failover: bool | None = None,
        client_attempts: int | None = None,
        think_s: tuple[float, float] | None = None,
        drained: dict[str, float] | None = None,
        max_seconds: float | None = None,
    ) -> None:
        """Change the running load: locust follows within a second (users at the given spawn rate).
        ``drained``: the data centers the global load balancer no longer sends users to (the whole set);
        ``max_seconds``: when locust stops by itself, from its start (a round extended runs longer)."""
        if users is not None and not 0 <= users <= MAX_USERS:
            raise UsageError(f"users must be 0..{MAX_USERS}, got {users}")
        with self._lock:
            try:
                control = self.control.updated(
                    users=users,
                    spawn_rate=spawn_rate,
                    edge_failover=edge_failover,
                    client_attempts=client_attempts,
                    think_s=think_s,
                    drained=drained,
                    max_seconds=max_seconds,
                )
            except ValueError as exc:
                raise UsageError(f"set_load: {exc}") from None
            write_control(self.control_path, control)
            self.control = control

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BLACKOUT_GATEWAYS": ",".join(f"{dc}={url}" for dc, url in self.gateways.items()),
            "BLACKOUT_RUN_DIR": str(self.run_dir),
            CONTROL_ENV: str(self.control_path),
            # Every locust process serves what its users saw on a free port and names it in the run
            # directory, where the run's Prometheus finds it (chaos.observability.prometheus).
            METRICS_PORT_ENV: "0",
            SUPERVISOR_ENV: str(os.getpid()),
            **({"BLACKOUT_SEED": str(self.seed)} if self.seed is not None else {}),
        }

    def start(self) -> int:
        """Start locust (the master and its workers when distributed); the pid of the one or the master."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            write_control(self.control_path, self.control)
        (self.run_dir / MASTER_FILE).unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--stop-timeout",
            "5",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--host",
            next(iter(self.gateways.values())),
        ]
        if self.workers:
            # Port 0: the master binds a free port and writes it to MASTER_FILE (never pick one and bind later).
            command += [
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                "0",
                "--expect-workers",
                str(self.workers),
                "--expect-workers-max-wait",
                str(int(START_TIMEOUT_S)),
            ]
        self.proc = self._spawn(command, self._env(), process_group=0)
        if self.workers:
            try:
                port = self._master_port()
                for index in range(self.workers):
                    env = {
                        **self._env(),
                        "BLACKOUT_WORKER_INDEX": str(index),
                        "BLACKOUT_WORKER_COUNT": str(self.workers),
                    }
                    worker = [
                        sys.executable,
                        "-m",
                        "locust",
                        "-f",
                        str(LOCUSTFILE),
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        str(port),
                        "--loglevel",
                        "WARNING",
                    ]
                    # Same process group as the master: one killpg stops the whole load generator.
                    self.worker_procs.append(self._spawn(worker, env, process_group=self.proc.pid))
            except BaseException:
                self.stop()
                raise
        return self.proc.pid

    def _spawn(self, command: list[str], env: dict[str, str], process_group: int) -> subprocess.Popen[bytes]:
        with (self.run_dir / LOCUST_LOG).open("ab") as log:
            return subprocess.Popen[bytes](
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=process_group,
            )

    def _master_port(self) -> int:
        path = self.run_dir / MASTER_FILE
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            if path.exists():
                return int(json.loads(path.read_text())["port"])
            time.sleep(0.1)  # poll interval
        raise RuntimeError_(f"the locust master did not report its port within {START_TIMEOUT_S:g}s")

    def _check_alive(self) -> None:
        for proc in [self.proc, *self.worker_procs]:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError_(f"locust exited with code {proc.returncode}; see {self.run_dir / LOCUST_LOG}")

    def running(self) -> bool:
        """False once the one locust or any of its processes has exited (its users are gone)."""
        main = self.proc
        return main is not None and all(p.poll() is None for p in [main, *self.worker_procs])

    def wait_logged_in(self, timeout_s: float = LOGIN_WAIT_S) -> tuple[int, int]:
        """Ready when every simulated user has logged in: made a first request that succeeded. Returns the
        accounts logged in and the accounts expected.

        A refused login does not count: a stack that sheds logins while the users arrive (on a loaded machine)
        would otherwise start the experiment with nobody able to use it, and its "before" steady state would
        have no data. Users arrive at the spawn rate, so the wait allows for the ramp on top of ``timeout_s``.
        When the time is up with some users still refused, the experiment goes on with those who got in (its
        "before" steady state judges the stack); with none in, there is nothing to measure.
        """
        budget = timeout_s + self.control.users / self.control.spawn_rate
        deadline = time.monotonic() + budget
        requests, seen = RequestsReader(self.run_dir / REQUESTS_FILE), set[str]()  # read from where it was
        # Rows name accounts, and creators share accounts: count the distinct accounts these users take.
        expected = len({account(n % MAX_USERS)[0] for n in range(self.control.users)})
        while time.monotonic() < deadline:
            self._check_alive()
            seen.update(row.user for row in requests.read_new() if row.ok)
            if len(seen) >= expected:
                return len(seen), expected
            time.sleep(0.2)  # poll interval
        if not seen:
            raise RuntimeError_(
                f"none of the load generator's {expected} accounts logged in within {budget:g}s: "
                "the stack was not healthy before the experiment"
            )
        return len(seen), expected

    def stop(self) -> None:
        if self.proc is None:
            return
        procs = [self.proc, *self.worker_procs]
        if all(p.poll() is not None for p in procs):
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            for proc in procs:
                proc.wait()
        except ProcessLookupError:
            pass
