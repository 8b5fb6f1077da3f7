"""An open-loop load generator of user actions: arrivals at a fixed rate (Poisson), bounded in time and count.

Unlike a closed loop (N users each waiting for their answer before asking again), arrivals here do not
slow down when the stack does: the traffic of many independent users, which is what overload is. Each
action is a feed (60%) or a view (40%) by one of the logged-in sessions; the app tries it up to
``client_attempts`` times on no answer or a 5xx, as the profile says, and, when the profile turns on
client throttling, throttles itself adaptively per gateway (the SRE book's client side: an app that sees
most of its requests refused refuses some locally, status ``THROTTLED``, instead of making the gateway
spend CPU refusing them). Only 127.0.0.1 is ever called.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from loadtest import records
from services.common.accounts import account
from services.common.names import UserAction
from services.common.overload import ClientThrottle, ClientThrottlePolicy
from services.common.seed import DEMO_PASSWORD, N_VIDEOS, video_name
from services.gateway import api as gateway_api

FEED_PAGE = f"{gateway_api.FEED}?limit={gateway_api.FEED_LIMIT}"
MAX_IN_FLIGHT = 5000  # past this the generator drops arrivals (counted) rather than grow without bound
# Connections per gateway, as an edge proxy keeps a pool of keep-alive connections to each backend: an
# action waits for a free one (that wait is part of its latency), no storm of new TCP connections.
POOL_PER_GATEWAY = 128
MAX_SECONDS = 120.0
USER_TIMEOUT_S = 10.0  # a user gives up on an answer after this long
FAST_REFUSAL_S = 0.25  # a 503/429 within this is "refused fast"
THROTTLED = -1  # the status of an action the app refused itself
REFUSALS = (THROTTLED, 429, 503)


@dataclass
class Outcome:
    ok: bool  # 2xx within the deadline
    status: int  # 0: no answer
    latency_s: float
    started: float = 0.0  # time.monotonic() when the user acted
    # a feed served from a fallback (the generic feed, or view counts stale or unavailable): cheaper to serve
    # than a full one, so a stack whose breakers are open can serve more feeds than one whose are closed
    degraded: bool = False
    action: UserAction | None = None  # feed or view: they cost the stack different amounts (goodput counts both)


@dataclass
class Level:
    """What one offered rate got."""

    offered_per_s: float
    seconds: float
    deadline_s: float
    outcomes: list[Outcome] = field(default_factory=list)
    dropped: int = 0  # arrivals the generator could not send (too many in flight)

    @property
    def goodput_per_s(self) -> float:
        return sum(o.ok for o in self.outcomes) / self.seconds

    @property
    def full_goodput_per_s(self) -> float:
        """Good answers that are not degraded: the stack's full service."""
        return sum(o.ok and not o.degraded for o in self.outcomes) / self.seconds

    def summary(self, capacity: float | None = None) -> dict:
        n = len(self.outcomes) + self.dropped
        served = sorted(o.latency_s * 1000 for o in self.outcomes if 200 <= o.status < 300)
        refused_fast = sum(o.status in REFUSALS and o.latency_s <= FAST_REFUSAL_S for o in self.outcomes)
        p99 = statistics.quantiles(served, n=100, method="inclusive")[98] if len(served) > 1 else None
        out = {
            "offered_per_s": round(self.offered_per_s, 1),
            "seconds": self.seconds,
            "actions": n,
            "goodput_per_s": round(self.goodput_per_s, 1),
            "full_goodput_per_s": round(self.full_goodput_per_s, 1),
            "served": len(served),
            "served_p50_ms": _r(statistics.median(served) if served else None),
            "served_p99_ms": _r(p99),
            "deadline_ms": self.deadline_s * 1000,
            "refused_fast_share": round(refused_fast / n, 3) if n else None,
            "throttled_by_app_share": round(sum(o.status == THROTTLED for o in self.outcomes) / n, 3) if n else None,
            "degraded_share_of_served": round(sum(o.degraded for o in self.outcomes) / len(served), 3)
            if served
            else None,
            "failed_slow_share": round(
                sum(not o.ok and not (o.status in REFUSALS and o.latency_s <= FAST_REFUSAL_S) for o in self.outcomes)
                / n,
                3,
            )
            if n
            else None,
            "statuses": {str(k): v for k, v in sorted(Counter(o.status for o in self.outcomes).items())},
            # which actions the goodput was made of: a level that serves more view writes and fewer feeds is cheaper
            "goodput_per_s_by_action": {
                action: round(n / self.seconds, 1)
                for action, n in sorted(Counter(o.action for o in self.outcomes if o.ok).items())
            },
            "dropped_by_generator": self.dropped,
        }
        if capacity:
            out["goodput_of_capacity"] = round(self.goodput_per_s / capacity, 3)
        return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _check_loopback(urls: list[str]) -> None:
    for url in urls:
        if urlsplit(url).hostname != "127.0.0.1":
            raise ValueError(f"load goes to 127.0.0.1 only, not {url}")


class OpenLoop:
    def __init__(
        self,
        gateways: list[str],
        client_attempts: int = 1,
        deadline_s: float = 2.0,
        seed: int = 7,
        throttle: ClientThrottlePolicy | None = None,
    ) -> None:
        _check_loopback(gateways)
        self.throttle = throttle if throttle is not None and throttle.enabled else None
        self.throttles = {gateway: ClientThrottle() for gateway in gateways}
        self.in_flight = {gateway: 0 for gateway in gateways}
        self.gateways = gateways
        self.client_attempts = client_attempts
        self.deadline_s = deadline_s
        self.rng = random.Random(seed)
        self.sessions: list[tuple[str, str]] = []  # (gateway URL, token)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OpenLoop:
        connector = aiohttp.TCPConnector(limit=POOL_PER_GATEWAY * len(self.gateways), limit_per_host=POOL_PER_GATEWAY)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=USER_TIMEOUT_S))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def login(self, users: int, first_user: int = 0, concurrency: int = 4, within_s: float = 120.0) -> float:
        """Log ``users`` accounts in (retrying refusals with backoff); seconds it took. Gentle: 4 at a time."""
        assert self.session is not None
        started = time.monotonic()
        numbers = iter(range(first_user, first_user + users))
        deadline = started + within_s

        async def one_by_one() -> None:
            for n in numbers:
                gateway = self.gateways[n % len(self.gateways)]
                pause = 0.2
                while True:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"could not log {users} users in within {within_s:g}s")
                    status, body, _ = await self._send(
                        "POST", gateway + gateway_api.LOGIN, {"username": account(n)[0], "password": DEMO_PASSWORD}
                    )
                    if status == 200 and isinstance(body, dict):
                        self.sessions.append((gateway, body["token"]))
                        break
                    await asyncio.sleep(pause * self.rng.random())
                    pause = min(pause * 2, 5.0)

        await asyncio.gather(*(one_by_one() for _ in range(concurrency)))
        return time.monotonic() - started

    async def _send(
        self, method: str, url: str, payload: dict | None, token: str | None = None
    ) -> tuple[int, object, float]:
        assert self.session is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        sent = time.monotonic()
        try:
            async with self.session.request(method, url, json=payload, headers=headers) as response:
                body = await response.json(content_type=None) if response.status == 200 else None
                return response.status, body, time.monotonic() - sent
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return 0, None, time.monotonic() - sent

    async def action(self) -> Outcome:
        gateway, token = self.sessions[self.rng.randrange(len(self.sessions))]
        kind: UserAction
        if self.rng.random() < 0.6:
            kind, method, url, payload = "feed", "GET", gateway + FEED_PAGE, None
        else:
            view = gateway_api.VIEW.format(video_id=video_name(self.rng.randint(1, N_VIDEOS)))
            kind, method, url, payload = "view", "POST", gateway + view, {"event_id": uuid.uuid4().hex}
        started = time.monotonic()
        policy = self.throttle
        throttle = self.throttles[gateway] if policy is not None else None
        if (
            policy is not None
            and throttle is not None
            and (
                not throttle.admit(policy)
                or self.in_flight[gateway] >= POOL_PER_GATEWAY  # every connection busy: refuse, do not queue
            )
        ):
            return Outcome(ok=False, status=THROTTLED, latency_s=0.0, started=started, action=kind)
        status, body = 0, None
        self.in_flight[gateway] += 1
        try:
            for _ in range(self.client_attempts):
                status, body, _ = await self._send(method, url, payload, token)
                if 0 < status < 500:
                    break
        finally:
            self.in_flight[gateway] -= 1
        latency = time.monotonic() - started
        if policy is not None and throttle is not None:
            throttle.record(policy, accepted=0 < status < 500)
        items = body.get("items") if method == "GET" and isinstance(body, dict) else None
        return Outcome(
            ok=200 <= status < 300 and latency <= self.deadline_s,
            status=status,
            latency_s=latency,
            started=started,
            action=kind,
            degraded=isinstance(items, list)
            and (records.is_generic_feed(items) or records.count_stale_views(items) > 0),
        )

    async def offer(self, per_second: float, seconds: float) -> Level:
        """Arrivals at ``per_second`` (exponential gaps) for ``seconds``; waits for the answers (bounded)."""
        if not 0 < seconds <= MAX_SECONDS or per_second <= 0:
            raise ValueError(f"seconds must be 0..{MAX_SECONDS:g} and the rate positive")
        if not self.sessions:
            raise ValueError("log users in first")
        level = Level(per_second, seconds, self.deadline_s)
        tasks: set[asyncio.Task] = set()

        def done(task: asyncio.Task) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is None:
                level.outcomes.append(task.result())

        start = time.monotonic()
        next_at = start
        while next_at < start + seconds:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= MAX_IN_FLIGHT:
                level.dropped += 1
            else:
                task = asyncio.create_task(self.action())
                tasks.add(task)
                task.add_done_callback(done)
            next_at += self.rng.expovariate(per_second)
        if tasks:  # every action ends by the user's timeout and its attempts
            await asyncio.wait(set(tasks), timeout=USER_TIMEOUT_S * self.client_attempts + 5)
        for task in list(tasks):
            task.cancel()
            level.dropped += 1
        return level
