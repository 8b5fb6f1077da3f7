"""Overload protection as profile data (``Profile.overload``): everything off unless a profile turns it on."""

from __future__ import annotations

from typing import Literal

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
    # "asked": the book's count, every call asked for (refused locally or sent): in a steady overload it sends
    # ~k x what is accepted, but after an outage it locks the client out until the window forgets it.
    # "sent": calls sent only: a recovered dependency gets its traffic back within seconds, but in a steady
    # overload it sends ~sqrt(k x accepted x asked), which the dependency must spend CPU refusing.
    counts: Literal["asked", "sent"] = "sent"
    max_rejection: float = Field(
        1.0, gt=0, le=1, description="never refuse more than this share (Envoy's cap: bounds an 'asked' lock-out)"
    )


class DimmerPolicy(_Strict):
    """Server side, before refusing: serve a share of requests without their optional work (a feed's counts)."""

    enabled: bool = False
    latency_target_s: float = Field(
        0.15, gt=0, le=60, description="a window of answers slower than this dims (below admission's target)"
    )
    step: float = Field(0.1, gt=0, le=1, description="the share served in full moves by this per judged window")
    min_full_share: float = Field(0.0, ge=0, lt=1, description="the dimmer's floor; below it the limit shrinks")


class OverloadPolicy(_Strict):
    admission: AdmissionPolicy = AdmissionPolicy()
    dimmer: DimmerPolicy = DimmerPolicy()
    # services calling services: they must get a recovered dependency back within a scenario's recovery goal
    client_throttle: ClientThrottlePolicy = ClientThrottlePolicy()
    # the users' app in front of the gateways (the benchmarks' open-loop generator)
    app_throttle: ClientThrottlePolicy = ClientThrottlePolicy()
