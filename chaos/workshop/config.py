"""What the instructor sets for an exercise: the scenario (or a draw), when the fault may come, and which
remediation actions the trainees may take. Plain data, from the CLI or a YAML file (`--config`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaos.faults.model import Duration
from services.common.config_files import describe, load_yaml
from services.common.errors import ConfigError
from services.common.policy import LIBRARY_NAME

# The on-call engineer's remediation controls: the words of `blackout exercise act`, of `allow:` and of the
# control room's buttons (dashed, like the CLI's `power-on`), each mapped here, and only here, to what it does:
# an action kind of chaos.faults.actions (the levers: each one's delay or cost is declared there), or one of
# the controller's own verbs. A team's profile switch is a deploy: rolled instance by instance, then the edge.
# Not panic: it ends the round for everyone and is the instructor's (POST /panic with the control token), never
# a team's lever.
REMEDIATIONS: dict[str, str] = {
    "power-on": "power_on",  # target: a data center, or {dc, boot_order, stagger}
    "power-off": "power_off",
    "profile": "deploy",  # target: a profile name, or {profile, step}
    "restart-instance": "restart_instance",  # target: an instance
    "drain": "drain",  # target: a data center (the global load balancer stops sending users there)
    "shed-logins": "shed_logins",  # target: logins per second per gateway, or {per_s, at}
    "dependency": "dependency",  # target: {callers, dependency, timeout_s, attempts, breaker}
    "remove-fault": "remove",  # target: the id of a fault or of a lever pulled (a drain, a login limit)
}
if TYPE_CHECKING:
    ActionName = str  # to the type checker; pydantic checks the word against REMEDIATIONS at run time
else:
    ActionName = Literal[tuple(REMEDIATIONS)]
ACTION_NAMES: tuple[str, ...] = tuple(REMEDIATIONS)
DEFAULT_ALLOW: tuple[str, ...] = ("power-on", "profile")
TEAM = r"^[a-z0-9][a-z0-9-]{0,29}$"


class Onset(BaseModel):
    """The fault comes this much later than the scenario says, drawn by the seed between min and max."""

    model_config = ConfigDict(extra="forbid")
    min: Duration = 10.0
    max: Duration = 60.0

    @model_validator(mode="after")
    def _ordered(self) -> Onset:
        if self.max < self.min:
            raise ValueError(f"max ({self.max:g}s) is before min ({self.min:g}s)")
        return self


class ExerciseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str = Field("team", pattern=TEAM)
    scenario: str | None = None  # a library name (the CLI also takes a file); None: drawn by the seed
    seed: int | None = None  # None: a fresh one, revealed at the end
    profile: str = Field("naive", pattern=LIBRARY_NAME)  # the profile the stack starts the exercise with
    users: int | None = Field(None, ge=1, le=500)
    onset: Onset = Onset()
    # the round lasts at least this long under load (None: the scenario's duration plus the onset)
    round: Duration | None = Field(None, gt=0, le=3600)
    # hold: the fault does not heal itself (no power_on steps, no `for`): restoring service is the team's job
    hold: bool = False
    # the chance (0-1) that the round is a no-fault control round, drawn by the seed: 1 always, 0 never
    control: float = Field(0.0, ge=0, le=1)
    # the round the leaderboard ranks this team in (beside the scenario): teams of one round share it
    round_id: str = Field("round", pattern=LIBRARY_NAME)
    allow: list[ActionName] = list(DEFAULT_ALLOW)
    max_actions: int = Field(20, ge=0, le=1000)

    @field_validator("allow")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


def parse_config(data: object, source: str) -> ExerciseConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, "an exercise config is a mapping (team, scenario, seed, onset, allow, ...)")
    try:
        return ExerciseConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe(exc)) from None


def load_config(path: Path | None, **overrides: object) -> ExerciseConfig:
    data = load_yaml(path) if path else {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "an exercise config is a mapping (team, scenario, seed, onset, allow, ...)")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_config(data, str(path or "exercise options"))
