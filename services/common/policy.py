"""Resilience profiles: how every service calls its dependencies, as plain data.

A profile is chosen at start (a YAML file under ``profiles/``) and can be swapped live.
Validation is separate from use: ``load_profile`` refuses a bad file naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.config_files import describe, load_yaml
from services.common.errors import ConfigError
from services.common.names import DependencyName
from services.common.overload.policy import OverloadPolicy

# A library name (a profile's, a scenario's): it becomes part of file names, so nothing that can leave a folder
LIBRARY_NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Strict):
    attempts: int = Field(1, ge=1, le=10, description="total attempts, the first included")
    backoff: Literal["none", "exponential"] = "none"
    base_s: float = Field(0.05, gt=0, le=10)
    max_s: float = Field(1.0, gt=0, le=60)
    jitter: Literal["none", "full"] = "none"


class BreakerPolicy(_Strict):
    enabled: bool = False
    failure_threshold: int = Field(5, ge=1, le=1000, description="failures that open it (consecutive, or in window_s)")
    failure_rate: float | None = Field(
        None, gt=0, le=1, description="open only when the window's failures are also this share of its calls"
    )
    window_s: float = Field(10.0, gt=0, le=600, description="the window failure_rate is judged over")
    reset_timeout_s: float = Field(5.0, gt=0, le=600)


class BulkheadPolicy(_Strict):
    max_concurrent: int | None = Field(None, ge=1, le=10_000, description="None: unbounded")


class RetryBudgetPolicy(_Strict):
    enabled: bool = False
    ratio: float = Field(0.1, ge=0, le=1, description="retries allowed per request")
    min_retries_per_s: float = Field(1.0, ge=0, le=1000)


class DependencyPolicy(_Strict):
    timeout_s: float = Field(5.0, gt=0, le=120, description="per attempt")
    retries: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    bulkhead: BulkheadPolicy = BulkheadPolicy()
    retry_budget: RetryBudgetPolicy = RetryBudgetPolicy()
    failover: bool = Field(False, description="try the next instance in the topology's failover order")


class FallbackPolicy(_Strict):
    view_counts: Literal["zero", "stale_or_unavailable"] = "zero"
    earnings: Literal["empty", "stale"] = "empty"
    recommendations: Literal["generic", "ladder"] = "generic"
    # A session the gateway cannot verify (auth slow or down): "logout" answers 401, so the app logs the
    # user out and every user logs in again (a login storm on the service that is already struggling);
    # "unavailable" answers 503 and the user keeps the session for when auth is back.
    sessions: Literal["logout", "unavailable"] = "logout"


class Profile(_Strict):
    name: str = Field(pattern=LIBRARY_NAME, description="lowercase letters, digits and dashes; names its files")
    description: str = ""
    topology: str = Field("fragile", pattern=r"^[a-z][a-z0-9-]{0,39}$", description="topologies/<name>.yaml it is for")
    edge_failover: bool = Field(False, description="the global load balancer sends users to a healthy data center")
    client_attempts: int = Field(1, ge=1, le=5, description="tries the app makes per user action (no answer or 5xx)")
    deadline_propagation: bool = False
    request_deadline_s: float = Field(10.0, gt=0, le=300, description="budget of one user request at the gateway")
    local_token_verification: bool = False
    token_cache_s: float = Field(30.0, ge=0, le=3600, description="how long the gateway trusts a remote /verify")
    fallbacks: FallbackPolicy = FallbackPolicy()
    # How the systems of record (views log, catalog) replicate: services/common/replication.py
    replication: Literal["async", "converge"] = Field(
        "async",
        description="async: log shipping, a rejoining DC discards what it had not shipped; converge: merged logs",
    )
    overload: OverloadPolicy = Field(OverloadPolicy(), description="admission control, client throttling (off)")
    default: DependencyPolicy = DependencyPolicy()
    dependencies: dict[DependencyName, DependencyPolicy] = {}

    def for_dependency(self, name: str) -> DependencyPolicy:
        # the keys were checked against DependencyName; any other name finds no entry: the default
        return self.dependencies.get(cast(DependencyName, name), self.default)


def parse_profile(data: object, source: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe(exc)) from None


def load_profile(path: str | Path) -> Profile:
    return parse_profile(load_yaml(path), str(path))


class ProfileHolder:
    """The profile in force for one service instance; swapped live without a restart."""

    def __init__(self, profile: Profile) -> None:
        self.current = profile

    def swap(self, profile: Profile) -> Profile:
        previous, self.current = self.current, profile
        return previous
