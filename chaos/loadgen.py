"""Locust as a child process: headless, bounded in time, recording what users saw into the run directory."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from chaos.runtime.base import RuntimeError_
from services.common.lifeline import SUPERVISOR_ENV

LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadtest" / "locustfile.py"
REQUESTS_CSV = "requests.csv"


class LoadGenerator:
    def __init__(
        self, run_dir: Path, gateways: dict[str, str], users: int, max_seconds: float,
        edge_failover: bool = False, client_attempts: int = 1,
    ) -> None:  # fmt: skip
        self.run_dir = run_dir
        self.edge_failover = edge_failover
        self.client_attempts = client_attempts
        self.gateways = gateways
        self.users = users
        self.max_seconds = max_seconds
        self.proc: subprocess.Popen | None = None

    def start(self) -> int:
        """Start locust; its pid."""
        env = {
            **os.environ,
            "BLACKOUT_GATEWAYS": ",".join(f"{dc}={url}" for dc, url in self.gateways.items()),
            "BLACKOUT_RUN_DIR": str(self.run_dir),
            "BLACKOUT_EDGE_FAILOVER": "1" if self.edge_failover else "0",
            "BLACKOUT_CLIENT_ATTEMPTS": str(self.client_attempts),
            SUPERVISOR_ENV: str(os.getpid()),
        }
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(self.users), "-r", str(max(1, self.users)), "-t", f"{int(self.max_seconds)}s",
            "--stop-timeout", "5", "--only-summary", "--loglevel", "WARNING",
            "--host", next(iter(self.gateways.values())),
        ]  # fmt: skip
        with (self.run_dir / "locust.log").open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, process_group=0
            )
        return self.proc.pid

    def wait_logged_in(self, timeout_s: float) -> None:
        """Ready when every simulated user has made its first request (its login)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError_(f"locust exited with code {self.proc.returncode}; see {self.run_dir / 'locust.log'}")
            if len({row["user"] for row in read_rows(self.run_dir)}) >= self.users:
                return
            time.sleep(0.2)  # poll interval
        raise RuntimeError_(f"the load generator's users did not all start within {timeout_s:g}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


def read_rows(run_dir: Path, finished_since: float = 0.0) -> list[dict]:
    """Rows of requests that finished at or after `finished_since` (a row is written when one finishes)."""
    path = run_dir / REQUESTS_CSV
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [
            row for row in csv.DictReader(f)
            if row.get("latency_ms") and float(row["t"]) + float(row["latency_ms"]) / 1000 >= finished_since
        ]


def window_stats(rows: list[dict]) -> dict[str, tuple[int, int]]:
    """dc -> (feed requests, feed successes) in the rows given: the live ticker's numbers."""
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row["action"] == "feed":
            stats[row["dc"]][0] += 1
            stats[row["dc"]][1] += row["ok"] == "1"
    return {dc: (n, ok) for dc, (n, ok) in stats.items()}
