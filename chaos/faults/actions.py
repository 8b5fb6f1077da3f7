"""The one registry of actions: every kind a timeline or the control API can take, declared once.

A declaration says what the kind's value is (its spec), whether it is a fault (it starts an outage: a profile
switch is a remedy, a power-on a restore), whether it can be reverted (``for``, rollbacks), which names of the
topology it targets, which runtime capability it needs, and its handler (chaos.faults.handlers). ``Action`` is
the discriminated union of one pydantic model per kind; ``check_action`` is the one place an action's targets
are checked against a topology (scenario validation, runs and the control API all come here).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

from chaos.faults import handlers
from chaos.faults.model import (
    ActionBase,
    Blackhole,
    Brownout,
    Corruption,
    DependencySetting,
    Deploy,
    Duration,
    Errors,
    Flap,
    Latency,
    Load,
    Loss,
    Name,
    PowerOn,
    Rate,
    ShedLogins,
)
from chaos.runtime.base import KILL, LINKS, NETWORK, POWER
from chaos.topology import Topology
from loadtest.control import DRAIN_TTL_S
from services.common.config_files import describe
from services.common.errors import ConfigError

DC = "data center"  # a target that must be a data center
ANY = "data center, service or instance"  # a target that may be any of the three
RANDOM = "random"  # power_off and kill_instance: the seed picks

# (field under the action, the name, what it must be); "" is the action's own value
Target = tuple[str, str, str]


def _power_on_shorthand(value: object) -> object:
    return {"dc": value} if isinstance(value, str) else value


def _two_names(value: object) -> object:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError("two names, e.g. [dc-east, dc-west]")
    return value


@dataclass(frozen=True)
class ActionKind:
    name: str
    spec: Any  # the type of its value, validated by pydantic
    fault: bool  # it starts an outage (the plan's phases)
    reversible: bool  # it can be undone: `for`, and the rollbacks
    targets: Callable[[Any], list[Target]]  # the names it aims at, to check against the topology
    capability: str | None  # what the runtime must be able to do (Runtime.capabilities); None: any runtime
    # (injector, fault id, action) -> ActiveFault, or a dict when nothing stays to undo; None: the plan unrolls it
    handler: Callable[..., Any] | None
    live: bool = True  # the control API may take it; False: only a scenario run can (a flap, a load step)
    cost: str = ""  # a lever's (a live action that is not a fault): what it takes, how long until users see it

    @property
    def lever(self) -> bool:
        """What an on-call engineer may pull: a live action that does not start an outage."""
        return self.live and not self.fault

    @cached_property
    def model(self) -> type[ActionBase]:
        return _MODELS[self.name]

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.spec)


def _link(spec: Any) -> list[Target]:
    return [("from", spec.source, ANY), ("to", spec.to, ANY)]


def _between_dcs(spec: Any) -> list[Target]:
    return [("from", spec.source, DC), ("to", spec.to, DC)]


def _named(scope: str) -> Callable[[Any], list[Target]]:
    return lambda name: [] if name == RANDOM else [("", name, scope)]


KINDS: dict[str, ActionKind] = {
    kind.name: kind
    for kind in (
        ActionKind(
            "power_off",
            Name,
            fault=True,
            reversible=True,
            targets=_named(DC),
            capability=POWER,
            handler=handlers.power_off,
        ),
        ActionKind(
            "power_on",
            Annotated[PowerOn, BeforeValidator(_power_on_shorthand)],
            fault=False,
            reversible=False,
            targets=lambda spec: [("dc", spec.dc, DC)],
            capability=POWER,
            handler=handlers.power_on,
            cost="each instance's boot (~1 s local, ~5 s a container), `stagger` between the boot order's waves; "
            "a partly lit data center gets only its dark instances; the data center then runs on stable power "
            "(a flapping generator no longer drives it)",
        ),
        ActionKind(
            "flap",
            Flap,
            fault=True,
            reversible=False,
            targets=lambda spec: [("dc", spec.dc, DC)],
            capability=POWER,
            handler=None,
            live=False,
        ),
        ActionKind(
            "kill_instance",
            Name,
            fault=True,
            reversible=True,
            targets=_named(ANY),
            capability=KILL,
            handler=handlers.kill_instance,
        ),
        ActionKind(
            "latency", Latency, fault=True, reversible=True, targets=_link, capability=LINKS, handler=handlers.link
        ),
        ActionKind(
            "errors", Errors, fault=True, reversible=True, targets=_link, capability=LINKS, handler=handlers.link
        ),
        ActionKind(
            "blackhole", Blackhole, fault=True, reversible=True, targets=_link, capability=LINKS, handler=handlers.link
        ),
        ActionKind(
            "partition",
            Annotated[tuple[Name, Name], BeforeValidator(_two_names)],
            fault=True,
            reversible=True,
            targets=lambda pair: [("0", pair[0], ANY), ("1", pair[1], ANY)],
            capability=LINKS,
            handler=handlers.link,
        ),
        # in the kernel, on the data centers' links: a runtime with network control only (netns). latency stays a
        # LINKS kind: every runtime has it (in the services), and netns makes it in the kernel where it can (netem,
        # else NFQUEUE and a delayer: chaos.faults.handlers._network_fault). corruption has no in-app stand-in (the
        # services see no bits): netem where the kernel has it, else the delayer flips bits of queued packets
        ActionKind(
            "loss", Loss, fault=True, reversible=True, targets=_between_dcs, capability=NETWORK, handler=handlers.loss
        ),
        ActionKind(
            "corruption",
            Corruption,
            fault=True,
            reversible=True,
            targets=_between_dcs,
            capability=NETWORK,
            handler=handlers.corruption,
        ),
        ActionKind(
            "rate", Rate, fault=True, reversible=True, targets=_between_dcs, capability=NETWORK, handler=handlers.rate
        ),
        ActionKind(
            "brownout",
            Brownout,
            fault=True,
            reversible=True,
            targets=lambda spec: [("target", spec.target, ANY)],
            capability=LINKS,
            handler=handlers.link,
        ),
        ActionKind(
            "profile",
            Annotated[str, Field(min_length=1)],
            fault=False,
            reversible=True,
            targets=lambda _: [],
            capability=None,
            handler=handlers.profile,
            cost="instant, every instance at once and the users' edge (the instructor's switch; trainees deploy)",
        ),
        ActionKind(
            "deploy",
            Deploy,
            fault=False,
            reversible=True,
            targets=lambda _: [],
            capability=None,
            handler=handlers.deploy,
            cost="`step` (2 s) per running instance, one after the other, then the users' edge (app settings, "
            "the load balancer's failover): 16-30 s for a whole stack; its rollback is instant",
        ),
        ActionKind(
            "restart_instance",
            Name,
            fault=False,
            reversible=False,
            targets=_named(ANY),
            capability=KILL,
            handler=handlers.restart_instance,
            cost="the instance's boot (~1 s local, ~5 s a container); a running one is down meanwhile (SIGKILL, "
            "then start); what was wrong inside the old process (a brownout) goes with it",
        ),
        ActionKind(
            "drain",
            Name,
            fault=False,
            reversible=True,
            targets=_named(DC),
            capability=None,
            handler=handlers.drain,
            cost=f"users' DNS answers expire over {DRAIN_TTL_S:g} s (each user's resolver at its own moment), then "
            "no user request reaches the data center; the other data centers take all of its users",
        ),
        ActionKind(
            "shed_logins",
            ShedLogins,
            fault=False,
            reversible=True,
            targets=lambda spec: [] if spec.at is None else [("at", spec.at, ANY)],
            capability=LINKS,
            handler=handlers.shed_logins,
            cost="at once (one admin call per gateway, on a 10-s lease the controller renews); logins past the "
            "rate are refused (429, Retry-After): users wait to log in while auth drains",
        ),
        ActionKind(
            "dependency",
            DependencySetting,
            fault=False,
            reversible=True,
            targets=lambda spec: [("callers", spec.callers, ANY)],
            capability=LINKS,
            handler=handlers.dependency,
            cost="at once on the running callers (their breakers and budgets rebuilt: state is lost); a live "
            "change, not a deploy: an instance restarted or powered on later starts with the profile again",
        ),
        ActionKind(
            "load",
            Load,
            fault=True,
            reversible=True,
            targets=lambda _: [],
            capability=None,
            handler=handlers.load,
            live=False,
        ),
    )
}

LEVERS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.lever)


def _model(name: str, kind: ActionKind) -> type[ActionBase]:
    """The model of one kind, made from its declaration: `kind` is the tag of the union."""
    tag: Any = Literal[name]  # a type made at run time: pydantic reads it, the type checker cannot
    return create_model(
        f"{name.title().replace('_', '')}Action", __base__=ActionBase, kind=(tag, name), spec=(kind.spec, ...)
    )


_MODELS: dict[str, type[ActionBase]] = {name: _model(name, kind) for name, kind in KINDS.items()}
# Union over a runtime tuple: the | operator cannot spell a union built from the registry (a value to the checker)
Action: Any = Annotated[Union[tuple(_MODELS.values())], Field(discriminator="kind")]  # noqa: UP007
ACTION: TypeAdapter[ActionBase] = TypeAdapter(Action)


def make(kind: str, spec: object, source: str = "action", **fields: Any) -> ActionBase:
    """An action built in code (a flap's steps, the control API's power buttons), validated through the union."""
    try:
        return ACTION.validate_python({"kind": kind, "spec": spec, **fields})
    except ValidationError as exc:
        raise ConfigError(source, describe(exc).replace(f"field '{kind}.spec", f"field '{kind}")) from None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,39}$")] | None = None
    duration: Duration | None = Field(None, alias="for")

    @model_validator(mode="after")
    def _one_action(self) -> _Envelope:
        keys = [k for k in (self.model_extra or {}) if k != "at"]
        unknown = [k for k in keys if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown action '{unknown[0]}'; actions: {', '.join(KINDS)}")
        if len(keys) != 1:
            raise ValueError(f"give exactly one action ({', '.join(KINDS)}), got {len(keys)}")
        return self


def parse_action(data: object, source: str, where: str) -> ActionBase:
    """Validate one action mapping (``at`` is the caller's); errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise ConfigError(source, f"field '{where}': a mapping such as {{power_off: dc-east}}")
    try:
        envelope = _Envelope.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _prefixed(where, describe(exc))) from None
    name = next(k for k in (envelope.model_extra or {}) if k != "at")
    kind = KINDS[name]
    try:
        spec = kind.adapter.validate_python(data[name])
    except ValidationError as exc:
        raise ConfigError(source, _prefixed(f"{where}.{name}", describe(exc))) from None
    if envelope.duration is not None and not kind.reversible:
        raise ConfigError(source, f"field '{where}.for': {name} cannot be reverted on a timer")
    return kind.model(kind=name, spec=spec, duration_s=envelope.duration, id=envelope.id)


def check_action(action: ActionBase, topology: Topology, source: str, where: str) -> None:
    """Every name the action targets exists in the topology; else the error names the source and the field."""
    for field, name, scope in KINDS[action.kind].targets(action.spec):
        path = ".".join(filter(None, (where, action.kind, field)))
        check_name(name, scope, topology, source, path)


def check_runtime(action: ActionBase, runtime: str, capabilities: frozenset[str], source: str, where: str) -> None:
    """The runtime can take the action; else the error names the source, the field and the runtime."""
    if refusal := runtime_refusal(action.kind, runtime, capabilities):
        raise ConfigError(source, f"field '{'.'.join(filter(None, (where, action.kind)))}': {refusal}")


def runtime_refusal(kind: str, runtime: str, capabilities: frozenset[str]) -> str:
    """Why the runtime cannot take an action of ``kind`` ("" when it can)."""
    needs = KINDS[kind].capability
    if needs is None or needs in capabilities:
        return ""
    can = ", ".join(name for name, k in KINDS.items() if k.capability is None or k.capability in capabilities)
    return f"the {runtime} runtime cannot do {kind} (it needs the '{needs}' capability); it can do: {can}"


def check_name(name: str, scope: str, topology: Topology, source: str, path: str) -> None:
    """``name`` is a data center of the topology (``DC``), or any of its data centers, services or instances."""
    try:
        topology.require_dc(name) if scope == DC else topology.find(name)
    except ConfigError as exc:
        raise ConfigError(source, f"field '{path}': {exc}") from None


def _prefixed(where: str, text: str) -> str:
    """pydantic's "field 'x': ..." made absolute: "field 'timeline.2.x': ..."."""
    return re.sub(
        r"field '([^']*)'",
        lambda m: f"field '{where}" + ("" if m.group(1) == "(top level)" else f".{m.group(1)}") + "'",
        text,
    ).replace("Value error, ", "")
