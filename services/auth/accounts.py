"""Every account auth knows: the demo world (hashes shipped in demo_users.json) and the load-test viewers.

Hashing 17,000 passwords with scrypt would take ~15 minutes of CPU, at every start. The load-test
viewers all share the demo password, so they share one precomputed scrypt hash (that of the first demo
viewer, salt included): passwords are still stored hashed, never in clear, and a login still pays the
full scrypt cost. Sharing a salt is acceptable only because these are public demo credentials.
"""

from __future__ import annotations

import json
from pathlib import Path

from services.common.accounts import viewer_usernames

Row = tuple[str, str, str]  # (user_id, role, password_hash)


def seed_rows(demo_users_file: Path) -> list[Row]:
    demo = json.loads(demo_users_file.read_text())
    rows: list[Row] = [(u["username"], u["role"], u["password_hash"]) for u in demo]
    viewer_hash = next(u["password_hash"] for u in demo if u["role"] == "viewer")
    known = {name for name, _, _ in rows}
    rows += [(name, "viewer", viewer_hash) for name in viewer_usernames() if name not in known]
    return rows
