"""What each kind of action does to a running stack; chaos.faults.actions names each kind's handler.

A handler takes the injector (its runtime, seeded draws, link faults, load), the fault's id and the action, and
returns the fault now active with its undo, or a dict when nothing stays to undo (a power-on restores).
"""

from __future__ import annotations

import random
import time
from typing import Any, Protocol, cast

from chaos.faults.active import ActiveFault, event_output
from chaos.faults.link import FaultNotLifted, LinkFaults, link_bodies
from chaos.faults.model import ActionBase
from chaos.profile_files import profile_file
from chaos.runtime.base import NETWORK, Runtime
from services.common.errors import UsageError
from services.common.policy import Profile, load_profile


class LoadControl(Protocol):
    def set_load(
        self,
        users: int | None = None,
        spawn_rate: float | None = None,
        edge_failover: bool | None = None,
        client_attempts: int | None = None,
    ) -> None: ...


class Injector(Protocol):
    """What handlers use of chaos.faults.injector.FaultInjector."""

    runtime: Runtime
    rng: random.Random
    links: LinkFaults | None
    load: LoadControl | None
    base_profile: Profile | None
    base_users: int
    quiet: bool

    def switch_profile(self, profile: Profile) -> dict[str, str]: ...

    def settle_power_off(self, dc: str) -> None: ...


def power_off(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    dc = inj.rng.choice(sorted(inj.runtime.topology.data_centers)) if action.spec == "random" else action.spec
    event = inj.runtime.power_off(dc)

    def undo() -> dict[str, Any]:
        if inj.runtime.powered().get(dc, True):
            return {"dc": dc, "note": "already powered on"}
        return event_output(inj.runtime.power_on(dc))

    return ActiveFault(fault_id, action, time.time(), undo, event_output(event))


def power_on(inj: Injector, fault_id: str, action: ActionBase) -> dict[str, Any]:
    spec = action.spec
    inj.settle_power_off(spec.dc)  # restoring power settles the power_off that cut it: nothing left to undo
    return event_output(inj.runtime.power_on(spec.dc, list(spec.boot_order), spec.stagger))


def kill_instance(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    running = [n for n, info in inj.runtime.status().items() if info["state"] == "running"]
    candidates = (
        [n for n in inj.runtime.topology.find(action.spec) if n in running] if action.spec != "random" else running
    )
    if not candidates:
        raise UsageError(f"no running instance matches '{action.spec}'; running: {', '.join(running) or 'none'}")
    name = inj.rng.choice(sorted(candidates))
    event = inj.runtime.kill_instance(name)

    def undo() -> dict[str, Any]:
        if inj.runtime.status()[name]["state"] == "running" or not inj.runtime.powered().get(event.dc, False):
            return {"instance": name, "note": "running again already, or its data center is dark"}
        return event_output(inj.runtime.start_instance(name))

    return ActiveFault(fault_id, action, time.time(), undo, event_output(event))


class NetworkControl(Protocol):
    """What a runtime with the NETWORK capability offers (chaos.runtime.netns.NetnsRuntime)."""

    netem: bool

    def impair(self, fault_id: str, source: str, to: str, *, netem: list[str]) -> None: ...

    def repair(self, fault_id: str) -> None: ...

    def block(self, fault_id: str, source: str, to: str, both_ways: bool) -> None: ...

    def unblock(self, fault_id: str) -> None: ...


# Faults the kernel can make between two data centers; errors (a synthetic 503) and brownouts (a slow server)
# are the application's own behaviour and stay in the services.
NETWORK_KINDS = ("latency", "blackhole", "partition")


def link(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    if network := _network_fault(inj, fault_id, action):
        return network
    links = inj.links
    if links is None:
        raise UsageError(f"the {inj.runtime.name} runtime cannot inject link faults")
    parts = link_bodies(inj.runtime.topology, action.kind, action.spec, inj.rng.randrange(2**31))
    if inj.quiet:  # an exercise's: the services neither log nor count it (services/common/faults/registry.py)
        parts = [(instances, {**body, "quiet": True}) for instances, body in parts]
    ids = [fault_id if len(parts) == 1 else f"{fault_id}.{n}" for n in range(1, len(parts) + 1)]
    output: dict[str, Any] = {
        pid: links.add(pid, instances, body) for pid, (instances, body) in zip(ids, parts, strict=True)
    }

    def undo() -> dict[str, Any]:
        output, errors = {}, []
        for pid in ids:  # every part, even after one failed: what was lifted stays lifted
            try:
                output[pid] = links.remove(pid)
            except FaultNotLifted as exc:
                errors.append(str(exc))
        if errors:
            raise FaultNotLifted("; ".join(errors))
        return output

    return ActiveFault(fault_id, action, time.time(), undo, output)


def _network_fault(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault | None:
    """The fault in the kernel, on the data centers' links, when the runtime can and both ends are data centers;
    None: the services inject it (a service or instance end, or a runtime without network control)."""
    if NETWORK not in inj.runtime.capabilities or action.kind not in NETWORK_KINDS:
        return None
    spec = action.spec
    source, to = spec if action.kind == "partition" else (spec.source, spec.to)
    centers = inj.runtime.topology.data_centers
    if source not in centers or to not in centers or source == to:
        return None
    net = cast(NetworkControl, inj.runtime)
    if action.kind == "latency" and not net.netem:
        return None  # this kernel cannot delay packets (no sch_netem): the services' client delays the calls
    if action.kind == "latency":
        netem = ["delay", f"{spec.ms:g}ms"] + ([f"{spec.jitter_ms:g}ms"] if spec.jitter_ms else [])
        net.impair(fault_id, source, to, netem=netem)
        output: dict[str, Any] = {"layer": "network", "netem": " ".join(netem), "from": source, "to": to}

        def undo() -> dict[str, Any]:
            net.repair(fault_id)
            return {"layer": "network", "removed": "netem"}

    else:
        both_ways = action.kind == "partition"
        net.block(fault_id, source, to, both_ways)
        output = {"layer": "network", "drops": "both ways" if both_ways else "one way", "from": source, "to": to}

        def undo() -> dict[str, Any]:
            net.unblock(fault_id)
            return {"layer": "network", "removed": "drops"}

    return ActiveFault(fault_id, action, time.time(), undo, output)


def profile(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    chosen = load_profile(profile_file(action.spec))
    before = inj.base_profile
    output = inj.switch_profile(chosen)

    def undo() -> dict[str, Any]:
        if before is None:
            return {"note": "no profile to go back to"}
        return inj.switch_profile(before)

    return ActiveFault(fault_id, action, time.time(), undo, {"profile": chosen.name, "instances": output})


def load(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    control = inj.load
    if control is None:
        raise UsageError("no load generator is running: a load step needs a scenario run")
    control.set_load(users=action.spec.users, spawn_rate=action.spec.spawn_rate)

    def undo() -> dict[str, Any]:
        control.set_load(users=inj.base_users)
        return {"users": inj.base_users}

    return ActiveFault(fault_id, action, time.time(), undo, {"users": action.spec.users})
