"""Overload protection as profile data (``Profile.overload``): everything off unless a profile turns it on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdmissionPolicy(_Strict):
    """Server side: an adaptive (AIMD) limit on requests in flight per instance; the excess gets a fast 503."""

    enabled: bool = False
    initial_limit: int = Field(32, ge=1, le=10_000)
    min_limit: int = Field(4, ge=1, le=10_000)
    max_limit: int = Field(256, ge=1, le=10_000)
    latency_target_s: float = Field(0.25, gt=0, le=60, description="a slower window of answers shrinks the limit")
    loop_lag_target_s: float = Field(
        0.05, gt=0, le=60, description="requests waiting longer than this to be read also shrink the limit"
    )
    decrease_factor: float = Field(0.9, gt=0, lt=1, description="limit *= this when answers are too slow")
    login_share: float = Field(0.2, gt=0, le=1, description="share of the limit logins may hold")
    retry_after_s: int = Field(1, ge=0, le=3600, description="sent with every 503 it answers")

    @model_validator(mode="after")
    def _ordered(self) -> AdmissionPolicy:
        if not self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("need min_limit <= initial_limit <= max_limit")
        return self


class ClientThrottlePolicy(_Strict):
    """Client side: the SRE book's adaptive throttling, per dependency (reject locally when it refuses most)."""

    enabled: bool = False
    k: float = Field(2.0, ge=1, le=100, description="accepts multiplier: 2 sends up to 2x what it accepts")
    window_s: float = Field(120.0, gt=0, le=3600)
    min_requests: int = Field(20, ge=0, le=100_000, description="fewer calls in the window: never throttle")


class OverloadPolicy(_Strict):
    admission: AdmissionPolicy = AdmissionPolicy()
    client_throttle: ClientThrottlePolicy = ClientThrottlePolicy()
