"""What each kind of action does to a running stack; chaos.faults.actions names each kind's handler.

A handler takes the injector (its runtime, seeded draws, link faults, load), the fault's id and the action, and
returns the fault now active with its undo, or a dict when nothing stays to undo (a power-on restores).
"""

from __future__ import annotations

import random
import time
from typing import Any, Protocol, cast

import httpx

from chaos.faults.active import ActiveFault, event_output
from chaos.faults.link import FaultNotLifted, LinkFaults, link_bodies
from chaos.faults.model import ActionBase
from chaos.instance_client import ADMIN_S, InstanceClient
from chaos.profile_files import profile_file
from chaos.runtime.base import NETWORK, PowerEvent, Runtime, RuntimeError_
from loadtest.control import DRAIN_TTL_S
from services.common.api import ADMIN_PROFILE
from services.common.errors import UsageError
from services.common.policy import Profile, load_profile, parse_profile


class LoadControl(Protocol):
    @property
    def drained(self) -> dict[str, float]: ...

    def set_load(
        self,
        users: int | None = None,
        spawn_rate: float | None = None,
        edge_failover: bool | None = None,
        client_attempts: int | None = None,
        think_s: tuple[float, float] | None = None,
        drained: dict[str, float] | None = None,
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
    stable_power: set[str]  # data centers an operator put on stable power: a flapping generator drives them no more

    def switch_profile(self, profile: Profile) -> dict[str, str]: ...

    def settle_power_off(self, dc: str) -> None: ...

    def settle(self, kind: str, instance: str) -> list[str]: ...


def power_off(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    dc = inj.rng.choice(sorted(inj.runtime.topology.data_centers)) if action.spec == "random" else action.spec
    event = inj.runtime.power_off(dc)

    def undo() -> dict[str, Any]:
        if inj.runtime.powered().get(dc, True):
            return {"dc": dc, "note": "already powered on"}
        return event_output(inj.runtime.power_on(dc))

    return ActiveFault(fault_id, action, time.time(), undo, event_output(event))


def power_on(inj: Injector, fault_id: str, action: ActionBase) -> dict[str, Any]:
    """Power to a dark data center (its services in the boot order, ``stagger`` apart), or to the dark instances
    of a partly lit one (a boot that stalled); with ``rest: dark`` the services the order leaves out stay dark."""
    spec, runtime = action.spec, inj.runtime
    state = runtime.status()
    names = runtime.topology.names(spec.dc)
    dark = [n for n in names if state[n]["state"] != "running"]
    if not dark:
        raise UsageError(f"{spec.dc} is powered on already: every instance is running")
    inj.settle_power_off(spec.dc)  # restoring power settles the power_off that cut it: nothing left to undo
    if len(dark) == len(names) and spec.rest == "last":
        return event_output(runtime.power_on(spec.dc, list(spec.boot_order), spec.stagger))
    waves = runtime.topology.boot_waves(spec.dc, list(spec.boot_order))
    if spec.rest == "dark" and spec.boot_order:  # drop the wave of the services the order leaves out
        instances = runtime.topology.instances()
        waves = [wave for wave in waves if instances[wave[0]][1].service in spec.boot_order]
    return _start_in_waves(inj, spec.dc, [[n for n in wave if n in dark] for wave in waves], spec.stagger)


def _start_in_waves(inj: Injector, dc: str, waves: list[list[str]], stagger_s: float) -> dict[str, Any]:
    """Start these dark instances wave by wave (each instance waits for its health); the output of a power-on."""
    started, events = time.monotonic(), []
    for n, wave in enumerate(w for w in waves if w):
        if n:
            time.sleep(stagger_s)  # the stagger is the caller's wish, not a readiness wait
        events += [inj.runtime.start_instance(name) for name in wave]
        for name in wave:
            inj.settle("kill_instance", name)
    unhealthy = "; ".join(e.detail for e in events if not e.healthy)
    names = tuple(name for event in events for name in event.instances)
    seconds = time.monotonic() - started
    return event_output(PowerEvent(dc, "on", names, seconds, healthy=not unhealthy, detail=unhealthy))


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


def restart_instance(inj: Injector, fault_id: str, action: ActionBase) -> dict[str, Any]:
    """Start one instance again: a dead one is started, a running one SIGKILLed first (a restart); either way
    the instance is a new process, so a fault living in the old one (a kill, a brownout) is settled."""
    runtime = inj.runtime
    named = runtime.topology.find(action.spec)
    state = runtime.status()
    dead = [n for n in named if state[n]["state"] != "running"]
    if len(named) > 1 and len(dead) != 1:
        raise UsageError(
            f"'{action.spec}' names {len(named)} instances ({', '.join(named)}), {len(dead)} of them down: "
            "name the one instance to restart"
        )
    name = dead[0] if dead else named[0]
    if not runtime.powered().get(runtime.topology.dc_of(name), False):
        raise UsageError(f"{name}'s data center is dark: power it on")
    killed = None if name in dead else event_output(runtime.kill_instance(name))
    output = {**event_output(runtime.start_instance(name)), "killed_first": killed}
    output["settled"] = inj.settle("kill_instance", name) + inj.settle("brownout", name)
    return output


def drain(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    """The global load balancer stops answering with the data center: users leave it as their DNS answers
    expire (DRAIN_TTL_S); undone, they come back the same way."""
    control, dc = _load(inj, "drain"), action.spec
    before = control.drained
    if dc in before:
        raise UsageError(f"{dc} is drained already")
    others = [d for d in inj.runtime.topology.data_centers if d != dc and d not in before]
    if not others:
        raise UsageError(f"draining {dc} would leave users no data center: undrain another first")
    at = time.time()
    control.set_load(drained={**before, dc: at})

    def undo() -> dict[str, Any]:
        control.set_load(drained={d: t for d, t in control.drained.items() if d != dc})
        return {"dc": dc, "undrained": True, "users_back_within_s": DRAIN_TTL_S}

    return ActiveFault(fault_id, action, at, undo, {"dc": dc, "users_gone_within_s": DRAIN_TTL_S, "to": others})


def shed_logins(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    """Every gateway (of ``at``) lets ``per_s`` logins a second through; carried like a link fault (a lease)."""
    links = _links(inj, "shed logins")
    topology = inj.runtime.topology
    named = topology.find(action.spec.at) if action.spec.at else list(topology.instances())
    gateways = [n for n in named if topology.instances()[n][1].service == "gateway"]
    if not gateways:
        raise UsageError(f"'{action.spec.at}' names no gateway: logins are shed at the gateways")
    outcomes = links.add(fault_id, gateways, {"kind": "login_limit", "rate_per_s": action.spec.per_s})
    return ActiveFault(fault_id, action, time.time(), lambda: links.remove(fault_id), outcomes)


def dependency(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    """One dependency's timeout, attempts or breaker changed live on every running caller ``callers`` names: each
    instance's profile read, changed there, and put back as it was on undo."""
    spec, runtime = action.spec, inj.runtime
    state = runtime.status()
    callers = [
        n
        for n in runtime.topology.find(spec.callers)
        if state[n]["state"] == "running" and spec.dependency in runtime.topology.dependency_urls(n)
    ]
    if not callers:
        raise UsageError(f"no running instance of '{spec.callers}' calls {spec.dependency}")
    before = {name: _profile_of(runtime, name) for name in callers}
    outcomes = {name: _push_one(runtime, name, _with_dependency(profile, spec)) for name, profile in before.items()}

    def undo() -> dict[str, Any]:
        state = runtime.status()
        return {name: _push_one(runtime, name, p) for name, p in before.items() if state[name]["state"] == "running"}

    return ActiveFault(fault_id, action, time.time(), undo, outcomes)


def _profile_of(runtime: Runtime, name: str) -> Profile:
    """The profile in force on one instance, from its admin route."""
    with InstanceClient(ADMIN_S, admin_secret=runtime.admin_secret) as client:
        try:
            answer = client.get(runtime.topology.url(name) + ADMIN_PROFILE)
        except httpx.HTTPError as exc:
            raise RuntimeError_(f"{name} did not say its profile ({type(exc).__name__})") from None
    if answer.status_code != 200:
        raise RuntimeError_(f"{name} did not say its profile: HTTP {answer.status_code}")
    return parse_profile(answer.json(), f"{name}'s profile")


def _push_one(runtime: Runtime, name: str, profile: Profile) -> str:
    """One instance's profile swapped live: "ok" or why not."""
    with InstanceClient(ADMIN_S, admin_secret=runtime.admin_secret) as client:
        return client.outcome("PUT", runtime.topology.url(name) + ADMIN_PROFILE, profile.model_dump(mode="json"))


def _with_dependency(profile: Profile, spec: Any) -> Profile:
    policy = profile.for_dependency(spec.dependency)
    update: dict[str, Any] = {}
    if spec.timeout_s is not None:
        update["timeout_s"] = spec.timeout_s
    if spec.attempts is not None:
        update["retries"] = policy.retries.model_copy(update={"attempts": spec.attempts})
    if spec.breaker is not None:
        update["breaker"] = policy.breaker.model_copy(update={"enabled": spec.breaker})
    return profile.model_copy(
        update={"dependencies": {**profile.dependencies, spec.dependency: policy.model_copy(update=update)}}
    )


class NetworkControl(Protocol):
    """What a runtime with the NETWORK capability offers (chaos.runtime.netns.NetnsRuntime)."""

    delay_layer: str  # "netem", "nfqueue", or "" (this kernel can delay or corrupt no packets)

    def impair(self, fault_id: str, source: str, to: str, *, rate: str = ..., netem: list[str] = ...) -> None: ...

    def delay(self, fault_id: str, source: str, to: str, ms: float, jitter_ms: float = ...) -> dict[str, str]: ...

    def corrupt(self, fault_id: str, source: str, to: str, percent: float) -> dict[str, str]: ...

    def repair(self, fault_id: str) -> None: ...

    def block(self, fault_id: str, source: str, to: str, both_ways: bool, loss_percent: int = ...) -> None: ...

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
    if action.kind == "latency" and not net.delay_layer:
        return None  # this kernel cannot delay packets (no netem, no NFQUEUE): the services' client delays the calls
    if action.kind == "latency":
        how = net.delay(fault_id, source, to, spec.ms, spec.jitter_ms)
        output: dict[str, Any] = {"layer": "network", **how, "from": source, "to": to}

        def undo() -> dict[str, Any]:
            net.repair(fault_id)
            return {"layer": "network", "removed": how["via"]}

    else:
        both_ways = action.kind == "partition"
        net.block(fault_id, source, to, both_ways)
        output = {"layer": "network", "drops": "both ways" if both_ways else "one way", "from": source, "to": to}

        def undo() -> dict[str, Any]:
            net.unblock(fault_id)
            return {"layer": "network", "removed": "drops"}

    return ActiveFault(fault_id, action, time.time(), undo, output)


def loss(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    """``percent`` of the packets between two data centers dropped at random, each way: nftables in both
    namespaces (``numgen random``; no netem needed). TCP resends them: calls slow down, some time out."""
    spec, net = action.spec, cast(NetworkControl, inj.runtime)
    net.block(fault_id, spec.source, spec.to, both_ways=True, loss_percent=spec.percent)

    def undo() -> dict[str, Any]:
        net.unblock(fault_id)
        return {"layer": "network", "removed": "drops"}

    output = {"layer": "network", "drops": f"{spec.percent}% each way", "from": spec.source, "to": spec.to}
    return ActiveFault(fault_id, action, time.time(), undo, output)


def corruption(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    """``percent`` of the packets ``from`` sends to ``to`` with one bit flipped: the receiver's checksum fails, it
    drops them and TCP resends (netem's corrupt, or the NFQUEUE delayer flipping a bit past the IP header)."""
    spec, net = action.spec, cast(NetworkControl, inj.runtime)
    how = net.corrupt(fault_id, spec.source, spec.to, spec.percent)

    def undo() -> dict[str, Any]:
        net.repair(fault_id)
        return {"layer": "network", "removed": how["via"]}

    output = {"layer": "network", **how, "from": spec.source, "to": spec.to}
    return ActiveFault(fault_id, action, time.time(), undo, output)


def rate(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    """What ``from`` sends to ``to`` held to ``mbit`` (tc htb on ``from``'s link; its answers come back as fast
    as ever): a saturated link, big answers queue behind each other."""
    spec, net = action.spec, cast(NetworkControl, inj.runtime)
    limit = f"{max(1, round(spec.mbit * 1000))}kbit"
    net.impair(fault_id, spec.source, spec.to, rate=limit)

    def undo() -> dict[str, Any]:
        net.repair(fault_id)
        return {"layer": "network", "removed": "rate limit"}

    return ActiveFault(
        fault_id, action, time.time(), undo, {"layer": "network", "rate": limit, "from": spec.source, "to": spec.to}
    )


def profile(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    chosen = load_profile(profile_file(action.spec))
    before = inj.base_profile
    output = inj.switch_profile(chosen)

    def undo() -> dict[str, Any]:
        if before is None:
            return {"note": "no profile to go back to"}
        return inj.switch_profile(before)

    return ActiveFault(fault_id, action, time.time(), undo, {"profile": chosen.name, "instances": output})


def deploy(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    """A profile rolled out as a deploy: one running instance at a time, each baking ``step`` before the next,
    then every instance sealed with it (and the copy later power-ons start with) and the users' edge last."""
    chosen = load_profile(profile_file(action.spec.profile))
    before = inj.base_profile
    runtime = inj.runtime
    rolled: dict[str, str] = {}
    for name, info in runtime.status().items():
        if info["state"] == "running":
            rolled[name] = _push_one(runtime, name, chosen)
            time.sleep(action.spec.step)  # the deploy's bake time per instance: its cost, not a readiness wait
    output = inj.switch_profile(chosen)

    def undo() -> dict[str, Any]:
        if before is None:
            return {"note": "no profile to go back to"}
        return inj.switch_profile(before)

    return ActiveFault(
        fault_id, action, time.time(), undo, {"profile": chosen.name, "rolled": rolled, "instances": output}
    )


def _load(inj: Injector, what: str) -> LoadControl:
    if inj.load is None:
        raise UsageError(f"no users' edge to {what}: it needs a scenario run (its load generator)")
    return inj.load


def _links(inj: Injector, what: str) -> LinkFaults:
    if inj.links is None:
        raise UsageError(f"the {inj.runtime.name} runtime cannot {what}")
    return inj.links


def load(inj: Injector, fault_id: str, action: ActionBase) -> ActiveFault:
    control = _load(inj, "step up")
    control.set_load(users=action.spec.users, spawn_rate=action.spec.spawn_rate)

    def undo() -> dict[str, Any]:
        control.set_load(users=inj.base_users)
        return {"users": inj.base_users}

    return ActiveFault(fault_id, action, time.time(), undo, {"users": action.spec.users})
