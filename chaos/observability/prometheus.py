"""A real Prometheus for a run: config generated from the topology, its TSDB in the run directory.

``start_prometheus`` returns None when no ``prometheus`` binary is on PATH (the caller prints
``INSTALL_HINT``). The listening port is race-free: Prometheus itself binds it, port 0 included (it then
logs the port the kernel gave it, which we read back); a fixed port that turns out to be taken is
retried once on port 0, so a second demo beside a first still gets its own Prometheus.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chaos.observability.scrape_config import write_config, write_user_targets
from chaos.topology import Topology
from loadtest.metrics import bound_ports
from services.common.errors import BlackoutError, UsageError

INSTALL_HINT = (
    "live dashboards: install Prometheus (apt-get install -y --no-install-recommends prometheus) and run again"
)
DIRECTORY = "prometheus"
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
# Keep a run's samples however old it gets: `blackout prometheus RUN_DIR` must find them next year too.
RETENTION = "10y"
_LISTENING = re.compile(r'msg="Listening on" address=\[?([0-9a-fA-F.:]+?)\]?:(\d+)\b')
_IN_USE = "address already in use"


class PrometheusError(BlackoutError):
    """Prometheus would not start or stop; the message quotes its log."""


@dataclass
class PrometheusHandle:
    url: str
    process: subprocess.Popen[bytes]
    directory: Path
    notes: list[str] = field(default_factory=list)  # e.g. "port 9090 was taken: listening on 40123"
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        """SIGTERM (Prometheus flushes its head block), SIGKILL after a grace period. Idempotent."""
        while self.on_stop:
            self.on_stop.pop()()
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> PrometheusHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def binary() -> str | None:
    return shutil.which("prometheus")


def start_prometheus(
    topology: Topology, run_dir: Path, extra_targets: dict[str, str], port: int = 9090
) -> PrometheusHandle | None:
    """Scrape every instance of ``topology`` (and each of ``extra_targets``: job name -> metrics URL)."""
    program = binary()
    if program is None:
        return None
    directory = run_dir / DIRECTORY
    config = write_config(topology, directory, extra_targets)
    handle = launch(program, config, directory, port)
    handle.on_stop.append(follow_load_generators(run_dir, directory / "targets"))
    return handle


def follow_load_generators(run_dir: Path, targets_dir: Path, every_s: float = 1.0) -> Callable[[], None]:
    """Keep the users' targets in step with the locust processes' port files; returns the stopper."""
    stopped = threading.Event()

    def follow() -> None:
        known: dict[str, int] = {}
        while not stopped.wait(every_s):
            ports = bound_ports(run_dir)
            if ports != known:
                write_user_targets(targets_dir, ports)
                known = ports

    thread = threading.Thread(target=follow, name="prometheus-user-targets", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(timeout=5)

    return stop


def launch(program: str, config: Path, directory: Path, port: int) -> PrometheusHandle:
    """Start Prometheus on 127.0.0.1:``port`` (0: any free port) and wait until it is ready."""
    try:
        return _launch_once(program, config, directory, port)
    except _PortTaken:
        handle = _launch_once(program, config, directory, 0)
        handle.notes.append(f"port {port} was taken; Prometheus listens on {handle.url} instead")
        return handle


class _PortTaken(Exception):
    pass


def _launch_once(program: str, config: Path, directory: Path, port: int) -> PrometheusHandle:
    # Absolute: Prometheus runs in ``directory``, where a path relative to ours (runs/...) means nothing.
    config, directory = config.resolve(), directory.resolve()
    (directory / "data").mkdir(parents=True, exist_ok=True)
    log_path = directory / "prometheus.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    command = [
        sys.executable,
        "-m",
        "chaos.observability.lifeline_exec",
        str(os.getpid()),
        program,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen[bytes](
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env={**os.environ, "PYTHONPATH": _project_path()},
        )
    try:
        bound = _wait_listening(process, log_path, offset)
        url = f"http://127.0.0.1:{bound}"
        _wait_ready(process, url, log_path, offset)
    except BaseException:
        PrometheusHandle("", process, directory).stop()
        raise
    return PrometheusHandle(url, process, directory)


def _project_path() -> str:
    root = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{rest}" if rest else root


def _log_since(log_path: Path, offset: int) -> str:
    with log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def _failure(log_path: Path, offset: int, what: str) -> PrometheusError:
    tail = "\n".join(_log_since(log_path, offset).splitlines()[-12:])
    return PrometheusError(f"Prometheus {what}; the end of {log_path}:\n{tail}")


def _wait_listening(process: subprocess.Popen[bytes], log_path: Path, offset: int) -> int:
    """The port Prometheus bound, read from its log (it logs the real port when asked for port 0)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = _log_since(log_path, offset)
        if found := _LISTENING.search(text):
            return int(found.group(2))
        if process.poll() is not None:
            if _IN_USE in text:
                raise _PortTaken()
            raise _failure(log_path, offset, f"exited with code {process.returncode} while starting")
        time.sleep(0.05)  # poll interval
    raise _failure(log_path, offset, f"did not start listening within {START_TIMEOUT_S:g}s")


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path, offset: int) -> None:
    """Poll /-/ready (200 once the TSDB is open and the config loaded) until the deadline."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise _failure(log_path, offset, f"exited with code {process.returncode} while starting")
            try:
                if client.get(url + "/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # poll interval
    raise _failure(log_path, offset, f"was not ready within {START_TIMEOUT_S:g}s")


def serve_run(run_dir: Path, port: int = 9090) -> PrometheusHandle:
    """Serve a finished run's recorded samples again: the same TSDB, nothing new scraped."""
    program = binary()
    if program is None:
        raise UsageError(f"no `prometheus` on PATH; {INSTALL_HINT}")
    directory = run_dir / DIRECTORY
    if not (directory / "data").is_dir():
        raise UsageError(f"{run_dir}: no {DIRECTORY}/data here (was Prometheus installed when this run was made?)")
    config = directory / "serve.yml"
    config.write_text("# written by `blackout prometheus`: serve recorded data, scrape nothing\nglobal: {}\n")
    return launch(program, config, directory, port)
