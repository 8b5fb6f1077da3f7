"""The one base exception of Blackout, and the errors a user sees as clear messages."""

from __future__ import annotations


class BlackoutError(Exception):
    """Base of every error Blackout raises on purpose."""


class UsageError(BlackoutError):
    """The user asked for something that does not exist or cannot be (the CLI exits 2)."""


class ConfigError(UsageError):
    """A topology, profile or scenario file (or environment) is invalid: names the source and the field."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class DependencyError(BlackoutError):
    """A call to another service failed after every policy (retries, failover) was spent."""

    def __init__(self, dependency: str, outcome: str, detail: str = "") -> None:
        super().__init__(f"{dependency}: {outcome}{': ' + detail if detail else ''}")
        self.dependency = dependency
        self.outcome = outcome
        self.detail = detail


class DependencyRejected(BlackoutError):
    """A dependency answered and refused the request with a 4xx: it is up, so this is no outage (no
    retry, no fallback, never "unavailable"). Either the user's input was wrong (the caller answers
    with its own 4xx and the reason) or our request was (a bug: the caller answers 502)."""

    def __init__(self, dependency: str, status: int, detail: str = "") -> None:
        super().__init__(f"{dependency} refused the request ({status}{': ' + detail if detail else ''})")
        self.dependency = dependency
        self.status = status
        self.detail = detail


class ConflictError(UsageError):
    """What was asked cannot be done in the present state (a run is in progress, the id is taken)."""
