"""The open-loop app throttles itself per gateway as its policy says, against a real local HTTP gateway that
can serve only so many actions a second and refuses the rest with 503 (the gateways' admission control)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from loadtest.open_loop import THROTTLED, Level, OpenLoop
from services.common.overload import ClientThrottlePolicy


class Gateway:
    """Logins always succeed; actions: at most ``per_s`` a second are served, the rest get 503."""

    def __init__(self, per_s: int, items: list[dict] | None = None) -> None:
        self.per_s = per_s
        self.items = items or []  # what a served feed holds
        self.second = 0
        self.served_this_second = 0
        self.actions: list[tuple[float, bool]] = []  # (when, served)

    async def login(self, request: web.Request) -> web.Response:
        return web.json_response({"token": "t"})

    async def action(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        if int(now) != self.second:
            self.second, self.served_this_second = int(now), 0
        served = self.served_this_second < self.per_s
        self.served_this_second += served
        self.actions.append((now, served))
        body = {"user_id": "u", "items": self.items} if request.method == "GET" else {}
        return web.json_response(body, status=200 if served else 503)


async def _offer(
    policy: ClientThrottlePolicy | None, per_s: int, offered_per_s: float, seconds: float, items: list | None = None
) -> tuple[Gateway, list]:
    gateway = Gateway(per_s, items)
    app = web.Application()
    app.router.add_post("/login", gateway.login)
    app.router.add_route("*", "/{tail:.*}", gateway.action)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with OpenLoop([f"http://127.0.0.1:{port}"], throttle=policy) as loop:
            await loop.login(4)
            started = time.monotonic()
            level = await loop.offer(offered_per_s, seconds)
        gateway.actions = [(t - started, served) for t, served in gateway.actions if t >= started]
        return gateway, level.outcomes
    finally:
        await runner.cleanup()


def _sent_per_accepted(gateway: Gateway, after_s: float) -> float:
    late = [served for t, served in gateway.actions if t >= after_s]
    return len(late) / max(1, sum(late))


def test_counting_actions_asked_sends_about_twice_what_the_gateway_serves() -> None:
    """10x overload: the book's count sends ~2x the served; counting only what was sent, ~sqrt(2 x 10) = 4.5x."""
    common = {"enabled": True, "k": 2, "window_s": 1.0, "min_requests": 20}
    asked = ClientThrottlePolicy(**common, counts="asked")
    sent = ClientThrottlePolicy(**common, counts="sent")
    gateway_asked, _ = asyncio.run(_offer(asked, per_s=30, offered_per_s=300, seconds=5))
    gateway_sent, _ = asyncio.run(_offer(sent, per_s=30, offered_per_s=300, seconds=5))
    ratio_asked, ratio_sent = _sent_per_accepted(gateway_asked, 2.0), _sent_per_accepted(gateway_sent, 2.0)
    assert 1.4 <= ratio_asked <= 3.0, ratio_asked
    assert ratio_sent > ratio_asked + 1.0, (ratio_sent, ratio_asked)


def test_a_gateway_refusing_everything_still_gets_the_capped_share() -> None:
    """The book's count alone would send about one action per window to a gateway that refused the last ones;
    capped at 90% refused, a tenth of the actions still reach it, so users are not locked out once it is back."""
    policy = ClientThrottlePolicy(enabled=True, k=2, window_s=30, min_requests=20, counts="asked", max_rejection=0.9)
    gateway, outcomes = asyncio.run(_offer(policy, per_s=0, offered_per_s=200, seconds=3))
    throttled = sum(o.status == THROTTLED for o in outcomes)
    reached = len(gateway.actions)
    assert reached + throttled == len(outcomes)
    # 20 before the throttle judges, then ~10% of the rest
    assert 20 + 0.05 * (len(outcomes) - 20) <= reached <= 20 + 0.2 * (len(outcomes) - 20), (reached, len(outcomes))


FULL = {"video_id": "video-0001", "source": "personalized", "views": 12, "views_status": "ok"}


@pytest.mark.parametrize(
    ("item", "degraded"),
    [
        (FULL, False),
        ({**FULL, "source": "generic"}, True),  # the recommender could not be read
        ({**FULL, "views": None, "views_status": "unavailable"}, True),  # nor views
        ({**FULL, "views_status": "stale"}, True),
    ],
)
def test_a_feed_served_from_a_fallback_counts_as_degraded(item: dict, degraded: bool) -> None:
    _, outcomes = asyncio.run(_offer(None, per_s=1000, offered_per_s=50, seconds=1, items=[item]))
    served = [o for o in outcomes if o.ok]
    assert len(served) > 10
    assert {o.action for o in served} == {"feed", "view"}
    assert not any(o.degraded for o in served if o.action == "view")
    by_action = Level(offered_per_s=50, seconds=1, deadline_s=2.0, outcomes=outcomes).summary()[
        "goodput_per_s_by_action"
    ]
    assert by_action == {
        "feed": sum(o.action == "feed" for o in served),
        "view": sum(o.action == "view" for o in served),
    }
    if degraded:  # the feeds (60% of actions); a view is never degraded
        assert 0 < sum(o.degraded for o in served) < len(served)
    else:
        assert not any(o.degraded for o in served)
