"""The earnings service's contract: its route and answer, for earnings (services/earnings/app.py) and the
gateway."""

from __future__ import annotations

from typing import TypedDict

EARNINGS = "/creators/{creator_id}/earnings"  # GET -> Statement


class Statement(TypedDict):
    creator_id: str
    views: int
    earnings_cents: int
    computed_at: float
    status: str  # ok, or stale: the last statement, shown while the views could not be read
