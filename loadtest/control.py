"""Live load control: a small JSON file in the run directory that a running locust follows.

``chaos.loadgen.LoadGenerator.set_load`` rewrites it atomically (write a temporary file, then rename over);
locust's shape (``loadtest.shape``) reads users and spawn rate from it every second, and every locust
process re-reads the edge settings (failover, the app's attempts) and the users' think time when the file
changes. Plain Python.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

from services.common.atomic_file import write_atomically

CONTROL_ENV = "BLACKOUT_LOAD_CONTROL"
MAX_CLIENT_ATTEMPTS = 5
MAX_THINK_S = 600.0
# A demo user acts about once a second: with 20 users the stack sees enough traffic to show a cascade within a
# minute (time compressed). A real viewer watches a video for 5-15 s before the next action: load tests of many
# users set think_s to that, so the users, not the seconds, carry the load.
DEMO_THINK_S = (0.5, 1.5)
# A drain at the global load balancer changes the DNS answer users get for their home data center; each
# user's resolver keeps the old answer until its cached copy expires, at its own moment within this TTL
# (real ones: 30-300 s; compressed like the demo's time).
DRAIN_TTL_S = 5.0


@dataclass(frozen=True)
class LoadControl:
    users: int
    spawn_rate: float
    edge_failover: bool = False
    client_attempts: int = 1
    max_seconds: float = 3600.0  # locust stops the run this long after its start (a round extended: later)
    think_s: tuple[float, float] = DEMO_THINK_S  # each user waits uniformly between these after an action
    # data center -> when (time.time()) the global load balancer stopped answering with it: its users go to
    # another data center once their resolver's TTL (DRAIN_TTL_S) ran out
    drained: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.users, bool) or not isinstance(self.users, int) or self.users < 0:
            problems.append(f"users must be a whole number >= 0, got {self.users!r}")
        if not _positive(self.spawn_rate):
            problems.append(f"spawn_rate must be a number > 0, got {self.spawn_rate!r}")
        if not isinstance(self.edge_failover, bool):
            problems.append(f"edge_failover must be true or false, got {self.edge_failover!r}")
        if (
            isinstance(self.client_attempts, bool)
            or not isinstance(self.client_attempts, int)
            or not 1 <= self.client_attempts <= MAX_CLIENT_ATTEMPTS
        ):
            problems.append(f"client_attempts must be 1..{MAX_CLIENT_ATTEMPTS}, got {self.client_attempts!r}")
        if not _positive(self.max_seconds):
            problems.append(f"max_seconds must be a number > 0, got {self.max_seconds!r}")
        if not isinstance(self.drained, dict) or not all(
            isinstance(dc, str) and _number(at) for dc, at in self.drained.items()
        ):
            problems.append(f"drained must map data centers to times, got {self.drained!r}")
        try:
            object.__setattr__(self, "think_s", think_range(self.think_s))  # JSON gives a list
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))

    def updated(self, **changes: Any) -> LoadControl:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _positive(value: object) -> bool:
    return _number(value) and value > 0


def think_range(value: object) -> tuple[float, float]:
    """A think time as (min, max) seconds; ValueError saying what one must be."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) for v in value):
        lo, hi = value
        if 0 <= lo <= hi <= MAX_THINK_S:
            return float(lo), float(hi)
    raise ValueError(f"think_s must be [min, max] seconds with 0 <= min <= max <= {MAX_THINK_S:g}, got {value!r}")


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def write_control(path: Path, control: LoadControl) -> None:
    """Replace the file in one step: a reader sees the old settings or the new ones, never half a file."""
    write_atomically(path, json.dumps(asdict(control)))


def read_control(path: Path) -> LoadControl:
    """The file's settings; ValueError naming the file and what is wrong."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    unknown = set(data) - set(LoadControl.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{path}: unknown fields {sorted(unknown)}")
    try:
        return LoadControl(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


class ControlWatcher:
    """The latest valid settings in the file, re-read only when it changed (cheap to call every tick)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self.control = read_control(path)  # a bad file at start is an error, later ones keep the last good
        self.error: str | None = None

    def current(self) -> LoadControl:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            self.error = str(exc)
            return self.control
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.control, self.error = read_control(self.path), None
            except ValueError as exc:
                self.error = str(exc)
        return self.control
