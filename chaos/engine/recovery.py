"""When a stack came back after the last fault was removed: for good, not for one window."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Change(StrEnum):
    RECOVERED = "recovered"
    RELAPSED = "relapsed"


@dataclass
class Recovery:
    """The first check of the last run of checks that held since ``removed_at``. A check that deviates after the
    hypothesis held again is a relapse, and recovery starts over: a metastable failure's sustaining effect (a
    naive stack's login storm) can take hold again once the users it let back in log in, so one good window
    after the trigger is not recovery. A check without data neither starts nor breaks a run of held checks."""

    removed_at: float
    since: float | None = None
    relapses: int = 0

    def see(self, t: float, held: bool | None) -> Change | None:
        """One check (held: every probe held on data of its own; False: a probe deviated; None: neither): what
        it changed, if anything."""
        if held and self.since is None:
            self.since = t
            return Change.RECOVERED
        if held is False and self.since is not None:
            self.since = None
            self.relapses += 1
            return Change.RELAPSED
        return None

    @property
    def after_s(self) -> float | None:
        return None if self.since is None else round(self.since - self.removed_at, 1)
