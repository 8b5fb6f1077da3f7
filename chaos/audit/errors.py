from __future__ import annotations

from services.common.errors import BlackoutError, UsageError


class AuditError(UsageError):
    """The directory is no run directory (no topology): exit 2 with the reason."""


class EvidenceError(BlackoutError):
    """Evidence the audit needs (a replica's database, the ledger, a profile) is missing or unreadable: a
    failed audit, never a pass on what was not seen. Each problem names its file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    @property
    def reasons(self) -> list[str]:
        """The failed audit's reasons, as a run's verdict lists them."""
        return [f"audit: missing evidence: {p}" for p in self.problems]
