"""Load-test accounts, derived from their number: the same list in auth (which seeds them) and in locust.

Simulated user ``i`` takes ``account(i)``. About 15% are creators; there are only ``N_CREATORS`` creator
accounts (the people who own the catalog), so creators are shared between users (one creator, many
devices); every other user is a viewer of its own, ``viewer-0001`` .. ``viewer-<MAX_VIEWERS>``.
The first 200 viewers and the 30 creators are the seeded demo world (services.common.seed).
"""

from __future__ import annotations

from functools import cache

from services.common.seed import N_CREATORS, creator_name, viewer_name

MAX_USERS = 20_000
CREATOR_SHARE = 0.15


def _creators_before(i: int) -> int:
    """Creators among users 0 .. i-1: rounding the running share keeps them spread evenly."""
    return int(i * CREATOR_SHARE + 0.5)


def account(i: int) -> tuple[str, str]:
    """(username, role) of simulated user ``i`` (0-based, below MAX_USERS)."""
    if not 0 <= i < MAX_USERS:
        raise ValueError(f"user number {i} is outside 0..{MAX_USERS - 1}")
    creators = _creators_before(i)
    if _creators_before(i + 1) > creators:
        return creator_name(creators % N_CREATORS + 1), "creator"
    return viewer_name(i - creators + 1), "viewer"


MAX_VIEWERS = MAX_USERS - _creators_before(MAX_USERS)


@cache
def viewer_usernames() -> tuple[str, ...]:
    """Every viewer account any simulated user can take."""
    return tuple(viewer_name(n) for n in range(1, MAX_VIEWERS + 1))


def is_account(username: str) -> bool:
    prefix, _, number = username.partition("-")
    if not number.isdigit():
        return False
    n = int(number)
    if prefix == "viewer":
        return 1 <= n <= MAX_VIEWERS and username == viewer_name(n)
    return prefix == "creator" and 1 <= n <= N_CREATORS and username == creator_name(n)
