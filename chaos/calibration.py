"""`blackout calibrate`: this machine's capacity for the stack, saved so scenarios can size their load to it.

A lesson about load near capacity (a retry storm that outlives its trigger) depends on how fast the machine
is: 60 users overload a slow laptop and idle on a fast one. The capacity is the open-loop search the
overload benchmark does: Poisson arrivals of user actions stepped up until goodput stops following the offer.
It is saved in the runs folder (``calibration.json``: the figure, the date, the CPU count, the profile) and a
scenario says ``load: {capacity: 0.8}`` to get as many users as offer 0.8 x that figure.

The stack and the generator share the machine's cores here, as the stack and locust do in a run (no pinning):
the figure is what a run on this machine can get.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
from loadtest.control import DEMO_THINK_S
from loadtest.open_loop import OpenLoop
from services.common.atomic_file import write_atomically
from services.common.errors import UsageError
from services.common.policy import load_profile

CALIBRATION_FILE = "calibration.json"
TOPOLOGIES = Path(__file__).resolve().parents[1] / "topologies"
SESSIONS = 100
FIRST_RATE, STEP, MAX_RATE = 20.0, 1.4, 3000.0
STEP_S = 6.0
SETTLE_S = 3.0  # between steps: the stack drains what the last one left
KEEPS_UP, GAINS = 0.85, 1.05
# Logins in flight while measuring auth's rate: enough to keep its CPU busy, few enough that each answers
# within the naive 1-s timeout on half a core (4 x ~110 ms of scrypt there), so no retry skews the figure.
LOGIN_CONCURRENCY = 4

RuntimeFactory = Callable[[Path, Path], LocalRuntime]  # (profile file, scratch directory) -> a stack not yet up


@dataclass(frozen=True)
class Calibration:
    capacity_per_s: float  # successful user actions/s at the knee
    profile: str
    cpus: int
    date: str  # UTC, ISO 8601
    machine: str
    steps: list[dict[str, Any]]  # offered/s -> goodput/s of every step of the search
    # logins/s the stack completes (auth's scrypt, on the same CPU): what a login storm saturates. Feeds and
    # views scale with the CPU of every instance, logins with auth's alone, so one is no measure of the other
    # (capped at half a core, 0.15 x the actions' capacity was 44 users, too few for a storm that outlives its
    # trigger). None: calibrated before it was measured.
    login_capacity_per_s: float | None = None

    def users_for(self, fraction: float, think_s: tuple[float, float], of: str = "actions") -> int:
        """Closed-loop users offering ``fraction`` x the capacity of ``of`` (actions, or logins: as many users as,
        were each of them logging in, would ask auth for that many times what it completes): each acts about once
        per mean think time (plus its answer's latency, small below capacity)."""
        if of == "logins" and self.login_capacity_per_s is None:
            raise UsageError(
                "the saved calibration has no login capacity (made before it was measured): "
                "run `blackout calibrate` again"
            )
        per_s = self.login_capacity_per_s if of == "logins" else self.capacity_per_s
        assert per_s is not None
        return max(1, round(fraction * per_s * (think_s[0] + think_s[1]) / 2))


async def find_capacity(
    loop: OpenLoop,
    step_s: float = STEP_S,
    first_rate: float = FIRST_RATE,
    max_rate: float = MAX_RATE,
    settle_s: float = SETTLE_S,
    say: Callable[[str], None] = print,
) -> tuple[float, list[dict[str, Any]]]:
    """Step the offered rate up until goodput stops following it: two steps in a row that neither keep up
    with the offer (85%) nor raise the best goodput by 5% (one noisy step on a shared machine is not a knee)."""
    steps, best, rate, flat = [], 0.0, first_rate, 0
    while rate <= max_rate and flat < 2:
        level = await loop.offer(rate, step_s)
        steps.append(level.summary())
        say(f"    capacity step: offered {rate:6.1f}/s -> goodput {level.goodput_per_s:6.1f}/s")
        keeps_up = level.goodput_per_s >= KEEPS_UP * rate
        flat = 0 if keeps_up or level.goodput_per_s > GAINS * best else flat + 1
        best = max(best, level.goodput_per_s)
        rate *= STEP
        await asyncio.sleep(settle_s)
    return best, steps


def local_stack(profile: Path, scratch: Path) -> LocalRuntime:
    topology = load_topology(TOPOLOGIES / f"{load_profile(profile).topology}.yaml").with_any_ports()
    return LocalRuntime(topology, scratch, profile=profile)


def calibrate(
    profile: Path,
    runs_root: Path,
    step_s: float = STEP_S,
    max_rate: float = MAX_RATE,
    sessions: int = SESSIONS,
    first_rate: float = FIRST_RATE,
    settle_s: float = SETTLE_S,
    stack: RuntimeFactory = local_stack,
    say: Callable[[str], None] = print,
) -> Calibration:
    """Start the stack with ``profile`` on free ports, find its capacity, save it in ``runs_root``."""
    policy = load_profile(profile)
    deadline_s = policy.request_deadline_s
    with tempfile.TemporaryDirectory(prefix="blackout-calibrate-") as scratch:
        runtime = stack(profile, Path(scratch))
        try:
            runtime.up()
            gateways = list(runtime.topology.gateways().values())

            async def search() -> tuple[float, float, list[dict[str, Any]]]:
                async with OpenLoop(gateways, client_attempts=policy.client_attempts, deadline_s=deadline_s) as loop:
                    # the sessions' logins, LOGIN_CONCURRENCY at a time, keep auth busy: their rate is its capacity
                    n = min(sessions, 100)
                    logins_per_s = n / await loop.login(n, concurrency=LOGIN_CONCURRENCY)
                    say(f"    logins: {logins_per_s:.1f}/s ({n}, {LOGIN_CONCURRENCY} at a time)")
                    capacity, steps = await find_capacity(loop, step_s, first_rate, max_rate, settle_s, say)
                    return capacity, logins_per_s, steps

            capacity, logins_per_s, steps = asyncio.run(search())
        finally:
            runtime.down()
    if capacity <= 0:
        raise UsageError("calibration: no user action succeeded; is the machine overloaded? see the steps above")
    result = Calibration(
        capacity_per_s=round(capacity, 1),
        profile=policy.name,
        cpus=os.cpu_count() or 1,
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=platform.node(),
        steps=steps,
        login_capacity_per_s=round(logins_per_s, 1),
    )
    save(result, runs_root)
    return result


def save(calibration: Calibration, runs_root: Path) -> Path:
    runs_root.mkdir(parents=True, exist_ok=True)
    path = runs_root / CALIBRATION_FILE
    write_atomically(path, json.dumps(asdict(calibration), indent=2), mode=0o644)  # a run never reads half of it
    return path


def saved(runs_root: Path) -> Path | None:
    """The calibration a run under ``runs_root`` uses: its own, else the nearest of a folder holding it (a
    workshop team's runs live in runs/teams/<team>; the machine, and so its calibration, is the workshop's)."""
    for folder in (runs_root.resolve(), *runs_root.resolve().parents):
        if (folder / CALIBRATION_FILE).exists():
            return folder / CALIBRATION_FILE
    return None


def load(runs_root: Path) -> Calibration:
    """The saved calibration; a clear error naming `blackout calibrate` when there is none (or it is unreadable)."""
    path = saved(runs_root) or runs_root / CALIBRATION_FILE
    if not path.exists():
        raise UsageError(
            f"{path} does not exist, and load sized to the machine's capacity needs it: "
            f"run `blackout calibrate` first (about a minute, on a quiet machine)"
        )
    try:
        data = json.loads(path.read_text())
        calibration = Calibration(**data)
        if not (
            isinstance(calibration.capacity_per_s, (int, float))
            and math.isfinite(calibration.capacity_per_s)
            and calibration.capacity_per_s > 0
        ):
            raise ValueError("capacity_per_s must be a number > 0")
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path}: not a calibration ({exc}); run `blackout calibrate` again") from None
    return calibration


def sized_users(
    fraction: float | None, runs_root: Path, think_s: tuple[float, float] | None, of: str = "actions"
) -> int:
    """A scenario's ``load: {capacity: fraction, of: ...}`` as users, from the calibration saved in ``runs_root``."""
    if fraction is None:
        raise UsageError("the scenario gives neither users nor capacity")
    return load(runs_root).users_for(fraction, think_s or DEMO_THINK_S, of)
