"""Signed, expiring tokens (HMAC-SHA256) and hashed passwords (scrypt). Standard library only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from typing import Any

from services.common.errors import BlackoutError

# OWASP's figure for new hashes (N=2^17, r=8, p=1: ~0.5 s of CPU and 128 MiB each). Stored hashes keep the
# parameters they were made with (the shipped demo accounts': 2^14, see services/auth/make_demo_users.py).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
# Hashes computed at once (the login threads wait their turn): more than the cores gain nothing (it is CPU
# work) and each holds 128 * r * N bytes: 40 threads at 2^17 would want 5 GiB.
_HASHING = threading.BoundedSemaphore(os.cpu_count() or 1)


def _maxmem(n: int, r: int, p: int) -> int:
    """What scrypt needs (128 * r * (n + p + 2) bytes: 128 MiB at 2^17) plus room: OpenSSL refuses
    anything over its 32 MiB default otherwise."""
    return 128 * r * (n + p + 2) + (1 << 20)


class TokenError(BlackoutError):
    """A token is malformed, forged or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(user_id: str, role: str, secret: bytes, ttl_s: int, now: float | None = None) -> tuple[str, float]:
    issued = time.time() if now is None else now
    expires = issued + ttl_s
    claims = {"sub": user_id, "role": role, "iat": int(issued), "exp": expires}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}", expires


def verify_token(token: str, secret: bytes, now: float | None = None) -> dict[str, Any]:
    try:
        body, sig = token.split(".")
        expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
        # as bytes: compare_digest refuses str holding non-ASCII (a TypeError, once a 500)
        if not hmac.compare_digest(sig.encode(), expected.encode()):
            raise TokenError("bad signature")
        claims = json.loads(_unb64(body))
    except (ValueError, json.JSONDecodeError) as exc:
        raise TokenError("malformed token") from exc
    if not isinstance(claims, dict) or not {"sub", "role", "exp"} <= claims.keys():
        raise TokenError("malformed claims")
    if claims["exp"] <= (time.time() if now is None else now):
        raise TokenError("token expired")
    return claims


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    with _HASHING:
        return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=_maxmem(n, r, p))


def hash_password(password: str, salt: bytes | None = None, n: int = SCRYPT_N) -> str:
    salt = os.urandom(16) if salt is None else salt
    digest = _scrypt(password.encode(), salt, n, SCRYPT_R, SCRYPT_P)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(password.encode(), _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, _unb64(digest))


def dummy_like(stored: str) -> str:
    """A hash of a random password with ``stored``'s parameters: checked for an unknown user, so a wrong
    password costs the same whether or not the account exists (the time taken does not tell)."""
    scheme, n, r, p, _, _ = stored.split("$")
    salt = os.urandom(16)
    digest = _scrypt(os.urandom(16), salt, int(n), int(r), int(p))
    return f"{scheme}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header: the one parser of it (the services, the admin
    routes, the control API). The scheme is case-insensitive (RFC 7235); a header without one, another scheme
    or an empty token is a TokenError (the callers answer 401)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise TokenError("missing bearer token")
    return token
