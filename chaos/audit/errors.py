from __future__ import annotations

from services.common.errors import UsageError


class AuditError(UsageError):
    """The run directory cannot be audited (no topology, a malformed ledger): exit 2 with the reason."""
