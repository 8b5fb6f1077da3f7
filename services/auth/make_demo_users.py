"""Regenerate demo_users.json: the seeded accounts with their scrypt hashes.

Hashing 230 passwords with scrypt takes ~13 s, too slow for every start, so the hashes ship as data.
Run: python -m services.auth.make_demo_users
"""

from __future__ import annotations

import json
from pathlib import Path

from services.common.seed import DEMO_PASSWORD, creator_names, viewer_names
from services.common.tokens import hash_password

DEMO_USERS_FILE = Path(__file__).with_name("demo_users.json")
# Below OWASP's 2^17 (services/common/tokens.py) on purpose: these are public demo credentials, and their cost
# sets how many logins per second auth can take in the load tests and the login storm (~45 ms each here,
# against ~0.5 s and 128 MiB at 2^17).
DEMO_SCRYPT_N = 2**14


def main() -> None:
    users = [{"username": name, "role": "viewer"} for name in viewer_names()]
    users += [{"username": name, "role": "creator"} for name in creator_names()]
    for user in users:
        user["password_hash"] = hash_password(DEMO_PASSWORD, n=DEMO_SCRYPT_N)
    DEMO_USERS_FILE.write_text(json.dumps(users, indent=0) + "\n")
    print(f"wrote {len(users)} users to {DEMO_USERS_FILE}")


if __name__ == "__main__":
    main()
