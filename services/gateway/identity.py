"""Who is calling: tokens verified locally (signed tokens need no round trip) or remotely at auth."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import HTTPException

from services.auth.api import VERIFY
from services.common.app import ServiceContext
from services.common.errors import DependencyError
from services.common.faults import scoped
from services.common.metrics import FALLBACKS
from services.common.tokens import TokenError, verify_token

CACHE_SIZE = 50_000


@dataclass(frozen=True)
class Identity:
    user_id: str
    role: str


class Verifier:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        # token -> (identity, when verified (monotonic), when the token expires (epoch s))
        self._cache: OrderedDict[str, tuple[Identity, float, float]] = OrderedDict()

    async def identify(self, token: str, fresh: bool = False) -> Identity:
        """fresh: a write that must not rely on a cached remote verification (nor may an experiment, which
        stands for a request after the cache's few seconds: services/common/faults/scoped.py)."""
        profile = self.ctx.profiles.current
        fresh = fresh or scoped.current() is not None
        if profile.local_token_verification:
            try:
                claims = verify_token(token, self.ctx.settings.secret_bytes())
            except TokenError as exc:
                raise HTTPException(status_code=401, detail=str(exc)) from None
            return Identity(claims["sub"], claims["role"])
        now = time.monotonic()
        cached = self._cache.get(token)
        # trusted for token_cache_s at most, and never past the token's own expiry
        if cached and not fresh and now - cached[1] < profile.token_cache_s and time.time() < cached[2]:
            return cached[0]
        try:
            response = await self.ctx.deps["auth"].request("GET", VERIFY, headers={"Authorization": f"Bearer {token}"})
        except DependencyError as exc:
            if profile.fallbacks.sessions == "logout":
                FALLBACKS.labels("session_logout").inc()
                raise HTTPException(status_code=401, detail="session could not be verified: log in again") from None
            raise HTTPException(status_code=503, detail=f"cannot verify the session: {exc}") from None
        if response.status_code in (401, 403):
            self._cache.pop(token, None)
            raise HTTPException(status_code=401, detail="session expired or invalid: log in again")
        try:
            if response.status_code != 200:
                raise ValueError(response.status_code)
            body = response.json()
            identity = Identity(body["user_id"], body["role"])
            expires_at = float(body["expires_at"])
        except (ValueError, KeyError, TypeError):  # auth or we got /verify wrong: not the user's fault
            raise HTTPException(
                status_code=502,
                detail=f"cannot verify the session: auth answered {response.status_code} without an identity",
            ) from None
        self._cache[token] = (identity, now, expires_at)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return identity
