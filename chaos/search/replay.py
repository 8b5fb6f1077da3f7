"""Confirmation under load: each minimal failing set replayed as a short live scenario on the search's own stack.

The request-scoped experiment says one request breaks; the replay makes the faults real (power cuts, killed
instances, the controller's link faults) with the load generator on, so breakers, retry budgets and queues
that one request never meets have their say. Each replay is written as a scenario in the library's format
(chaos/scenarios/*.yaml, action kinds from chaos/faults/actions.py), so it can become a regression scenario
and a workshop card; it is *confirmed* when its hypothesis deviated while the faults were on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from chaos.engine.run import RunOptions
from chaos.engine.scenario import load_scenario
from chaos.runtime.base import Runtime
from chaos.search.atoms import POWER, Atom
from chaos.search.oracle import USERNAME, Entry
from chaos.stack import run_scenario
from chaos.topology import Topology
from services.common.policy import Profile
from services.common.seed import DEMO_PASSWORD
from services.common.symptoms import SYMPTOMS

# Ten users arriving two a second: a burst of logins on a stack a previous replay just restarted takes longer than
# the edge's 0.5-s try (each login is ~55 ms of scrypt on two shared cores) and leaves no steady state to judge.
USERS, SPAWN_RATE = 10, 2.0
FAULT_AT_S, FAULT_FOR_S, AFTER_S = 10, 12, 6
PAST_TIMEOUT_MS = 200  # "slow": answered this long after the caller's timeout
DURING = "deviated during the faults"  # chaos/engine/verdict.py's reason when a check during the faults deviated
BEFORE = ("deviated before the first fault", "no steady state before the first fault")  # verdict.py's, too
READY_WITHIN_S, READY_POLL_S, READY_IN_A_ROW = 60.0, 0.5, 3


@dataclass
class Replay:
    cut: frozenset[Atom]
    entries: list[Entry]
    scenario: Path
    run_dir: Path | None = None
    confirmed: bool | None = None  # None: not run, or no steady state before the faults (inconclusive)
    reasons: tuple[str, ...] = ()


def steps(atom: Atom, topology: Topology, profile: Profile) -> dict[str, Any]:
    """The timeline action that makes ``atom`` real. A crashed or black-holed instance is killed: the local
    runtime keeps a killed instance's socket open, so its callers see a black hole either way."""
    if atom.kind == POWER:
        return {"power_off": atom.target}
    if not atom.source:
        return {"kill_instance": atom.target}
    link = {"from": atom.source, "to": atom.target}
    if atom.kind == "error":
        return {"errors": {**link, "rate": 1.0}}
    if atom.kind == "slow":
        service = topology.instances()[atom.target][1].service
        timeout_ms = profile.for_dependency(service).timeout_s * 1000.0
        return {"latency": {**link, "ms": timeout_ms + PAST_TIMEOUT_MS}}
    return {"blackhole": link}


def scenario(cut: frozenset[Atom], entries: Sequence[Entry], topology: Topology, profile: Profile) -> dict[str, Any]:
    names = ", ".join(a.name for a in sorted(cut))
    probes: list[dict[str, Any]] = []
    for entry in entries:
        probes.append({"success_rate": {"action": entry.action, "dc": entry.dc, "min": 0.9}})
    for s in SYMPTOMS:
        if s.misleads and any(e.action == s.action for e in entries):
            probes.append({"symptom": {"name": s.name, "max": 0}})
    timeline = [
        {"at": f"{FAULT_AT_S}s", **steps(atom, topology, profile), "for": f"{FAULT_FOR_S}s"} for atom in sorted(cut)
    ]
    broken = ", ".join(e.label for e in entries)
    return {
        "title": f"Minimal cut: {names}",
        "description": f"Found by `blackout search` on the {topology.name} topology: {names} breaks {broken}.",
        "learn": (
            f"No set of fewer faults breaks {broken} under the {profile.name} profile, and this one does: it cuts "
            "every way the request could succeed. Which redundancy would make it take one more fault?"
        ),
        "profiles": {profile.name: "deviates (a minimal cut set found by blackout search)"},
        "load": {"users": USERS, "spawn_rate": SPAWN_RATE},
        "duration": f"{FAULT_AT_S + FAULT_FOR_S + AFTER_S}s",
        "hypothesis": {"window": "6s", "min_requests": 5, "probes": _unique(probes)},
        "timeline": timeline,
    }


def _unique(probes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for probe in probes:
        if probe not in seen:
            seen.append(probe)
    return seen


def write_scenario(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=120))
    load_scenario(path)  # the library's own validation: a replay the library would refuse is a bug here
    return path


def replay(item: Replay, runtime: Runtime, profile_path: Path, seed: int, runs_root: Path, attempts: int = 2) -> Replay:
    """Run the replay's scenario on ``runtime`` (the search's stack, lent as the control API lends one), once the
    stack serves again after the previous replay; a replay whose steady state did not hold before its faults
    proves nothing either way and runs once more."""
    for _ in range(attempts):
        wait_ready(runtime.topology)
        options = RunOptions(
            scenario=item.scenario,
            profile=profile_path,
            seed=seed,
            runs_root=runs_root,
            runtime=runtime,
            observe=False,
        )
        result = run_scenario(options, Console(quiet=True))
        item.run_dir, item.reasons = result.run_dir, tuple(result.reasons)
        if any(reason.startswith(BEFORE) for reason in result.reasons):
            item.confirmed = None
            continue
        item.confirmed = any(reason.startswith(DURING) for reason in result.reasons)
        break
    return item


def wait_ready(topology: Topology) -> None:
    """Until every gateway serves a login and a feed several times in a row: the services a replay restarted
    (a power-on, a killed instance) take logins again only once warm, and a replay starting before would
    judge the restart, not its faults. RuntimeError after READY_WITHIN_S."""
    deadline = time.monotonic() + READY_WITHIN_S
    with httpx.Client(timeout=2.0) as client:
        for url in topology.gateways().values():
            in_a_row = 0
            while in_a_row < READY_IN_A_ROW:
                in_a_row = in_a_row + 1 if _serves(client, url) else 0
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the stack did not serve again within {READY_WITHIN_S:g}s ({url})")
                if in_a_row < READY_IN_A_ROW:
                    time.sleep(READY_POLL_S)  # poll interval


def _serves(client: httpx.Client, url: str) -> bool:
    try:
        login = client.post(f"{url}/login", json={"username": USERNAME, "password": DEMO_PASSWORD})
        if login.status_code != 200:
            return False
        token = login.json()["token"]
        return client.get(f"{url}/feed", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    except (httpx.HTTPError, ValueError, KeyError):
        return False
