"""Every action a scenario timeline or the control API can take, as validated data.

A timeline step is ``{at: 20s, <action>: <spec>, for: 30s (optional), id: name (optional)}`` with exactly
one action key. ``for`` reverts the action that long after it was taken; without it a fault lasts until a
later step undoes it (``power_on`` after ``power_off``) or the run ends, when every rollback runs.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from services.common.config_files import describe
from services.common.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``20s``, ``500ms``, ``2m`` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 20s, 500ms or 2m")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration such as 20s, 500ms or 2m")
    if seconds < 0 or seconds > 24 * 3600:
        raise ValueError(f"{value!r}: a duration between 0 and 24h")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PowerOn(_Spec):
    dc: Name
    boot_order: list[Literal["auth", "views", "earnings", "recommender", "gateway"]] = []
    stagger: Duration = 0.0


class Flap(_Spec):
    dc: Name
    times: int = Field(ge=1, le=20)
    off_for: Duration  # not `off`/`on`: YAML reads those words as booleans
    on_for: Duration


class Link(_Spec):
    """Calls from one place to another: each end a data center, a service or an instance."""

    source: Name = Field(alias="from")
    to: Name


class Latency(Link):
    ms: float = Field(gt=0, le=60_000)
    jitter_ms: float = Field(0, ge=0, le=60_000)


class Errors(Link):
    rate: float = Field(gt=0, le=1)


class Blackhole(Link):
    pass


class Brownout(_Spec):
    target: Name
    ms: float = Field(gt=0, le=60_000)
    jitter_ms: float = Field(0, ge=0, le=60_000)


class Load(_Spec):
    users: int = Field(ge=1, le=100_000)
    spawn_rate: float | None = Field(None, gt=0, le=10_000)


# action key -> the model of its value (a bare string is shorthand for the first field)
ACTIONS: dict[str, type[BaseModel] | type[str]] = {
    "power_off": str,
    "power_on": PowerOn,
    "flap": Flap,
    "kill_instance": str,
    "latency": Latency,
    "errors": Errors,
    "blackhole": Blackhole,
    "partition": list,
    "brownout": Brownout,
    "profile": str,
    "load": Load,
}
LINK_ACTIONS = frozenset({"latency", "errors", "blackhole", "partition", "brownout"})
REVERSIBLE = frozenset({"power_off", "kill_instance", "profile", "load"}) | LINK_ACTIONS


class Action(BaseModel):
    """One validated action: its kind and its spec (a model, or a name for power_off/kill_instance/profile)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    kind: str
    spec: Any
    duration_s: float | None = None  # `for`: revert this long after it was taken
    id: str | None = None

    def describe(self) -> str:
        spec = self.spec.model_dump(by_alias=True) if isinstance(self.spec, BaseModel) else self.spec
        return f"{self.kind} {spec}" + (f" for {self.duration_s:g}s" if self.duration_s is not None else "")

    def to_data(self) -> dict:
        spec = self.spec.model_dump(mode="json", by_alias=True) if isinstance(self.spec, BaseModel) else self.spec
        data: dict[str, Any] = {self.kind: spec}
        if self.duration_s is not None:
            data["for"] = f"{self.duration_s:g}s"
        if self.id:
            data["id"] = self.id
        return data


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,39}$")] | None = None
    duration: Duration | None = Field(None, alias="for")

    @model_validator(mode="after")
    def _one_action(self) -> _Envelope:
        keys = [k for k in (self.model_extra or {}) if k != "at"]
        unknown = [k for k in keys if k not in ACTIONS]
        if unknown:
            raise ValueError(f"unknown action '{unknown[0]}'; actions: {', '.join(ACTIONS)}")
        if len(keys) != 1:
            raise ValueError(f"give exactly one action ({', '.join(ACTIONS)}), got {len(keys)}")
        return self


def parse_action(data: object, source: str, where: str) -> Action:
    """Validate one action mapping (``at`` is the caller's); errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise ConfigError(source, f"field '{where}': a mapping such as {{power_off: dc-east}}")
    try:
        envelope = _Envelope.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _prefixed(where, describe(exc))) from None
    kind = next(k for k in (envelope.model_extra or {}) if k != "at")
    value = data[kind]
    model = ACTIONS[kind]
    if kind == "power_on" and isinstance(value, str):
        value = {"dc": value}
    if kind == "partition":
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise ConfigError(source, f"field '{where}.partition': two names, e.g. [dc-east, dc-west]")
        spec: Any = tuple(value)
    elif model is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(source, f"field '{where}.{kind}': a name, e.g. {kind}: dc-east")
        spec = value
    else:
        try:
            spec = model.model_validate(value)  # type: ignore[union-attr]
        except ValidationError as exc:
            raise ConfigError(source, _prefixed(f"{where}.{kind}", describe(exc))) from None
    if envelope.duration is not None and kind not in REVERSIBLE:
        raise ConfigError(source, f"field '{where}.for': {kind} cannot be reverted on a timer")
    return Action(kind=kind, spec=spec, duration_s=envelope.duration, id=envelope.id)


def _prefixed(where: str, text: str) -> str:
    """pydantic's "field 'x': ..." made absolute: "field 'timeline.2.x': ..."."""
    return re.sub(r"field '([^']*)'", lambda m: f"field '{where}" + ("" if m.group(1) == "(top level)" else f".{m.group(1)}") + "'", text).replace("Value error, ", "")
