"""A locust load shape that follows the live control file: users and spawn rate, until the run's max time.

The locustfile imports ``ControlledShape`` only when ``BLACKOUT_LOAD_CONTROL`` names a control file, so a
plain ``locust -u N -r R -t T`` run keeps its command-line options. Only the master (or a lone locust)
runs the shape; workers receive their share of users from it.
"""

from __future__ import annotations

import os
from pathlib import Path

from locust import LoadTestShape

from loadtest.control import CONTROL_ENV, ControlWatcher


class ControlledShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.watcher = ControlWatcher(Path(os.environ[CONTROL_ENV]))

    def tick(self) -> tuple[int, float] | None:
        control = self.watcher.current()
        if self.get_run_time() >= control.max_seconds:
            return None  # locust stops the run
        return control.users, control.spawn_rate
