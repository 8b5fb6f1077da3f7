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
