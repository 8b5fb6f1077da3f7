"""Per-request accounting of downstream calls and attempts, to measure retry amplification end to end.

Each service adds its own attempts to those its dependencies report in their response headers,
so the gateway's headers count the whole call tree below one user request (as far as answers came back).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

ATTEMPTS_HEADER = "X-Blackout-Attempts"
CALLS_HEADER = "X-Blackout-Calls"


@dataclass
class RequestAccount:
    attempts: int = 0
    calls: int = 0

    def add_reported(self, headers: Mapping[str, Any]) -> None:
        """Add what a dependency reports for its own subtree."""
        get = headers.get
        try:
            self.attempts += int(get(ATTEMPTS_HEADER, 0))
            self.calls += int(get(CALLS_HEADER, 0))
        except ValueError:
            pass  # a malformed header from a peer is not worth failing a request over


_current: ContextVar[RequestAccount | None] = ContextVar("blackout_request_account", default=None)


def begin() -> RequestAccount:
    account = RequestAccount()
    _current.set(account)
    return account


def current() -> RequestAccount:
    account = _current.get()
    if account is None:  # outside a request (startup, tests): count into a throwaway
        account = begin()
    return account
