"""What the chaos controller may inject into a running instance: one link fault, as validated data.

The wire format is fixed (the controller is coded against it): ``PUT /admin/faults/{id}`` with a
`FaultSpec` as its JSON body. Client-side kinds (latency, error, blackhole) act in the shared HTTP
client on attempts to the listed ``targets`` (empty: every dependency call); ``brownout`` acts on the
instance's own incoming requests and ignores ``targets``. ``login_limit`` is not a fault but an operator's
lever carried the same way (a lease the controller renews): the instance lets ``rate_per_s`` logins a second
through and refuses the rest with 429.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

FAULT_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
FaultKind = Literal["latency", "error", "blackhole", "brownout", "login_limit"]
KINDS: tuple[str, ...] = ("latency", "error", "blackhole", "brownout", "login_limit")
CLIENT_KINDS = frozenset({"latency", "error", "blackhole"})
MAX_DELAY_MS = 600_000


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    targets: tuple[str, ...] = Field((), description="base URLs of dependency instances; empty: every call")
    latency_ms: float = Field(0, ge=0, le=MAX_DELAY_MS)
    jitter_ms: float = Field(0, ge=0, le=MAX_DELAY_MS)
    error_rate: float = Field(0.0, ge=0, le=1, description="error: fraction of attempts answered 503")
    rate_per_s: float = Field(0.0, ge=0, le=10_000, description="login_limit: logins let through per second")
    lease_s: float = Field(gt=0, le=3600, description="the fault expires this long after the last PUT")
    seed: int | None = Field(None, description="seeds the fault's jitter and error draws")
    # A hidden-fault exercise's: the instance's log and /metrics, which its team reads, must not name it (the
    # round's journal, the instructor's, does). The symptoms (timeouts, errors, delays) are the same.
    quiet: bool = Field(False, description="log nothing and count nothing that names the fault")

    @field_validator("targets")
    @classmethod
    def _http_base_urls(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = []
        for target in targets:
            parts = urlsplit(target)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{target!r} is not an http(s) base URL such as http://127.0.0.1:8002")
            cleaned.append(target.rstrip("/"))  # the client compares rstrip'ed base URLs
        return tuple(cleaned)


@dataclass
class Fault:
    """One active fault: its spec, when its lease runs out (registry clock), and its own random source."""

    id: str
    spec: FaultSpec
    expires_at: float
    rng: random.Random = field(repr=False, default_factory=random.Random)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def applies_to(self, target: str) -> bool:
        """A client-side fault acting on an attempt to ``target`` (a base URL, already rstrip'ed)."""
        return self.spec.kind in CLIENT_KINDS and (not self.spec.targets or target in self.spec.targets)

    def delay_s(self) -> float:
        """latency_ms + uniform(0, jitter_ms), in seconds (latency and brownout)."""
        jitter = self.rng.uniform(0, self.spec.jitter_ms) if self.spec.jitter_ms else 0.0
        return (self.spec.latency_ms + jitter) / 1000.0

    def draws_error(self) -> bool:
        """error: True for the fraction ``error_rate`` of attempts."""
        return self.spec.error_rate > 0 and self.rng.random() < self.spec.error_rate

    def describe(self, now: float) -> dict[str, Any]:
        left = round(max(0.0, self.expires_at - now), 3)
        return {"id": self.id, **self.spec.model_dump(mode="json"), "expires_in_s": left}
