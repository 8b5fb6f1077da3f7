"""The oracle: one user action under one fault set, judged as the user would see it.

It plays the app in front of the gateways as the load generator does (loadtest/locustfile.py, loadtest/edge.py):
the profile's own tries on no answer or a 5xx, and with ``edge_failover`` one more try at another data center's
gateway, each behind the edge's try timeout. The user's hop to a gateway is the oracle's own call, so it applies
the atoms that down a gateway itself; every other atom goes in the signed request-scoped header
(services/common/faults/scoped.py), which the services apply and answer with the request's lineage.

The answer is judged by the rules the hypotheses use (chaos/engine/hypothesis.py on a ``RequestRow`` built with
loadtest/records.py's checks): **broken** when the action fails or shows a misleading symptom (a failed read
shown as 0 views: services/common/symptoms.py), **degraded** when it succeeds with an honest one (stale or
unavailable counts, a generic feed, earnings unavailable), **ok** otherwise.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaos.engine.hypothesis import evaluate
from chaos.engine.scenario import Probe, SuccessRate
from chaos.engine.scenario import Symptom as SymptomProbe
from chaos.search.atoms import USER, Atom, gateway_fault, scoped_faults
from chaos.search.pruning import Support
from chaos.topology import Topology
from loadtest import records
from loadtest.edge import EDGE_TRY_TIMEOUT_S, RETRYABLE
from loadtest.requests_reader import RequestRow
from services.common.faults import scoped
from services.common.policy import Profile
from services.common.seed import DEMO_PASSWORD
from services.common.symptoms import SYMPTOMS

ACTIONS = ("feed", "view", "login", "upload", "earnings")
REQUEST_TIMEOUT_S = 10.0  # the load generator's plain try (BLACKOUT_REQUEST_TIMEOUT_S's default)
USERNAME = "creator-001"  # a creator: every action is open to it
OK, DEGRADED, BROKEN = "ok", "degraded", "broken"


@dataclass(frozen=True)
class Entry:
    """A user action from one home data center: what the search tries to break."""

    action: str
    dc: str

    @property
    def label(self) -> str:
        return f"{self.action} @ {self.dc}"


@dataclass
class Outcome:
    verdict: str  # ok | degraded | broken
    status: int  # the last try's HTTP status; 0: no answer
    latency_ms: float
    support: Support  # the calls that answered (empty unless something answered)
    detail: str = ""
    symptoms: dict[str, int] = field(default_factory=dict)


class Oracle:
    def __init__(self, topology: Topology, profile: Profile, admin_secret: str, client: httpx.AsyncClient) -> None:
        self.topology = topology
        self.profile = profile
        self.key = admin_secret.encode()
        self.client = client
        self.gateways = topology.gateways()  # data center -> its gateway's URL, in the file's order
        self.names = {topology.url(name): name for name in topology.instances()}  # base URL -> instance
        self.knowledge = records.ViewKnowledge()
        self.tokens: dict[str, str] = {}
        self.video_id = "video-0001"

    async def prepare(self) -> None:
        """Sessions for every home data center and what users know of view counts, all without faults."""
        for dc in self.gateways:
            status, body = (await self._send(dc, "POST", "/login", self._login_body(), frozenset()))[:2]
            if records.validate_login(body) is not None:
                raise RuntimeError(f"cannot log in at {dc}'s gateway without faults: HTTP {status}")
            self.tokens[dc] = body["token"]
        for dc in self.gateways:
            body = (await self._send(dc, "GET", "/feed?limit=10", None, frozenset()))[1]
            if records.validate_feed(body) is None:
                self.knowledge.observe_feed(body["items"])
                self.video_id = body["items"][0]["video_id"] if body["items"] else self.video_id

    async def run(self, entry: Entry, chosen: frozenset[Atom]) -> Outcome:
        method, path, payload = self._request(entry.action)
        retryable = entry.action in RETRYABLE
        tries = (self.profile.client_attempts + (1 if self.profile.edge_failover else 0)) if retryable else 1
        down: set[str] = set()
        started = time.perf_counter()
        status, body, support, error = 0, None, frozenset[tuple[str, str]](), ""
        for n in range(1, tries + 1):
            dc = self._route(entry.dc, down)
            status, body, support, error = await self._send(dc, method, path, payload, chosen)
            if status == 0 and self.profile.edge_failover:
                down.add(dc)  # the edge's passive health check
            if not ((status == 0 or status >= 500) and n < tries):
                break
        latency_ms = (time.perf_counter() - started) * 1000.0
        return self._judge(entry, status, body, latency_ms, support, error)

    # -- the app ----------------------------------------------------------------------------------
    def _route(self, home: str, down: set[str]) -> str:
        if home not in down:
            return home
        return next((dc for dc in self.gateways if dc not in down), home)

    def _request(self, action: str) -> tuple[str, str, dict[str, Any] | None]:
        if action == "feed":
            return "GET", "/feed?limit=10", None
        if action == "view":
            return "POST", f"/videos/{self.video_id}/view", {"event_id": uuid.uuid4().hex}
        if action == "login":
            return "POST", "/login", self._login_body()
        if action == "upload":
            return "POST", "/videos", {"title": f"search clip {uuid.uuid4().hex[:8]}", "tags": ["outage"]}
        return "GET", "/me/earnings", None

    def _login_body(self) -> dict[str, str]:
        return {"username": USERNAME, "password": DEMO_PASSWORD}

    async def _send(
        self, dc: str, method: str, path: str, payload: dict[str, Any] | None, chosen: frozenset[Atom]
    ) -> tuple[int, Any, Support, str]:
        """One try at ``dc``'s gateway: (status, JSON body, support, error); status 0 is no answer."""
        url = self.gateways[dc]
        gateway = self.names[url]
        fault = gateway_fault(chosen, gateway, self.topology)
        if fault is not None:  # the user's own hop: nothing to send (a black hole would only cost the timeout)
            return 0, None, frozenset(), f"{gateway} {'refused the connection' if fault == 'crash' else 'no answer'}"
        headers = {scoped.REQUEST_FAULTS_HEADER: scoped.sign(scoped_faults(chosen, self.topology), self.key)}
        if dc in self.tokens and path != "/login":
            headers["Authorization"] = f"Bearer {self.tokens[dc]}"
        timeout = EDGE_TRY_TIMEOUT_S if self.profile.edge_failover else REQUEST_TIMEOUT_S
        try:
            response = await self.client.request(method, url + path, json=payload, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            return 0, None, frozenset(), f"{gateway}: {type(exc).__name__}"
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 401 and scoped.REQUEST_FAULTS_HEADER in str(body):
            raise RuntimeError(f"{gateway} refused the signed fault set: {body}")  # a wrong key: never a result
        support = self._support(gateway, response.headers.get(scoped.LINEAGE_HEADER, ""))
        return response.status_code, body, support, ""

    def _support(self, gateway: str, lineage: str) -> Support:
        """The calls that answered, as (caller, callee) instance pairs: the user's hop and every ``ok`` entry."""
        edges = {(USER, gateway)}
        for entry in filter(None, lineage.split(",")):
            caller, target, outcome = entry.split(" ")
            if outcome == "ok" and target in self.names:
                edges.add((caller, self.names[target]))
        return frozenset(edges)

    # -- the judgement ------------------------------------------------------------------------------
    def _judge(self, entry: Entry, status: int, body: Any, latency_ms: float, support: Support, error: str) -> Outcome:
        ok, counts, why = False, {}, error or f"HTTP {status}"
        if 200 <= status < 300:
            reason = VALIDATORS[entry.action](body)
            ok, why = reason is None, f"malformed: {reason}" if reason else ""
            if ok:
                counts = self._symptoms(entry.action, body)
        if entry.action == "earnings":
            counts["earnings_missing"] = int(records.earnings_missing(ok, body))
        row = RequestRow(
            t=0.0, dc=entry.dc, action=entry.action, ok=ok, latency_ms=latency_ms, status=status, counts=counts
        )
        shown = {s.name: row.symptom(s.name) for s in SYMPTOMS if s.action == entry.action and row.symptom(s.name)}
        if any(evaluate(probe, [row], 1).status == "deviated" for probe in _probes(entry.action)):
            verdict = BROKEN
            why = why or ", ".join(f"{name} {n}" for name, n in shown.items())
        elif shown:
            verdict, why = DEGRADED, ", ".join(f"{name} {n}" for name, n in shown.items())
        else:
            verdict = OK
        return Outcome(verdict, status, round(latency_ms, 1), support if ok else frozenset(), why, shown)

    def _symptoms(self, action: str, body: Any) -> dict[str, int]:
        if action != "feed":
            return {}
        items = body["items"]
        return {
            "zero_view_displays": self.knowledge.zero_views(items),
            "stale_views": records.count_stale_views(items),
            "generic_feeds": int(records.is_generic_feed(items)),
        }


VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "feed": records.validate_feed,
    "view": records.validate_view,
    "login": records.validate_login,
    "upload": records.validate_upload,
    "earnings": records.validate_earnings,
}


def _probes(action: str) -> list[Probe]:
    """The hypothesis a single request must hold: it succeeded, and showed nothing misleading."""
    probes = [Probe(success_rate=SuccessRate.model_validate({"action": action, "min": 1.0}))]
    probes += [Probe(symptom=SymptomProbe(name=s.name, max=0)) for s in SYMPTOMS if s.misleads and s.action == action]
    return probes
