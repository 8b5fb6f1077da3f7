"""The scripted responder's bookkeeping (examples/responder.py), over a mocked team API: the long tests play it on
real stacks (tests/benchmarks/support/test_card_rounds.py)."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx

from chaos.engine.run import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "examples"))
from responder import Responder, Seen, Team  # an example program, not a package


def team_answering(acted: list[dict[str, Any]]) -> Team:
    """A Team whose API answers a lever as the control room does: 200 and the act's own body."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        if request.url.path == "/exercise/act":
            acted.append(body)
            return httpx.Response(200, json={**body, "status": "succeeded", "output": {}})
        return httpx.Response(200, json={"declarations": 1})

    team = Team("http://room.test/room?code=abc")
    team.http = httpx.Client(base_url="http://room.test", transport=httpx.MockTransport(answer))
    return team


def test_after_its_deploy_the_responder_restarts_auth_first():
    """A lever's answer carries a "status" of its own ("succeeded"): the deploy must still count, so that users
    failing after it send the responder to the systems of record, auth first (a retry storm's second lever)."""
    acted: list[dict[str, Any]] = []
    responder = Responder(team_answering(acted))
    dc_of = {"auth-east": "dc-east", "views-east": "dc-east", "gateway-east": "dc-east", "gateway-west": "dc-west"}
    seen = Seen(
        success={"dc-east": 0.3, "dc-west": 0.4},
        p99_ms={"dc-east": 900.0, "dc-west": 800.0},
        power={"dc-east": True, "dc-west": True},
        down=[],
        hung=set(),
        dc_of=dc_of,
    )
    responder.usual_p99_ms = 100.0
    responder.pull("failed_requests", "dc-east", "overload", "profile", "resilient")
    assert responder.deploys == 1 and responder.log[-1].endswith("-> 200"), responder.log
    assert acted == [{"action": "profile", "target": "resilient"}]
    rung = responder.next_rung(seen)
    assert rung == ("failed_requests", "auth-east", "slow-dependency", "restart-instance", "auth-east"), rung
