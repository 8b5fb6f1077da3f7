"""A scripted on-call responder: plays a Blackout exercise from a team's link, as a team (or an automated on-call
agent) may, through the team API alone (docs/agents.md): it watches what users see, acknowledges the page,
diagnoses from observations with a runbook of symptoms -> levers, declares, pulls a lever and waits until users
are served again. It never reads the scenario, its card or the hidden file: it knows only the general playbook.

    python examples/responder.py 'http://127.0.0.1:<port>/room?code=<code>' [--budget 300]

The runbook, in order (each rung is tried, then given RUNG_WAIT_S for users to come back, before the next):
  a data center went dark (now or earlier): power-loss there -> power it on, systems of record first;
  an instance down in a lit data center: process-crash -> restart it (one that runs but does not answer its
  health check: a slow dependency; after a deploy, once more: the new process gets the new profile);
  users hurt with every host up: slow views in the sickest data center -> restart them; one data center sick
  beside a healthy one -> drain it (a partition); everything still sick -> deploy the resilient profile; still
  sick after the deploy -> restart the systems of record, auth first (a new process drops the work queued in
  the old one, e.g. a login storm's backlog, and starts with the deployed profile)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

GOOD_SUCCESS = 0.9  # the library's usual hypothesis: 90% of feeds served
SLOW_P99_MS = 2500.0  # a request slower than this is bad (the pager's SLO)...
SLOWER = 2.0  # ...and so is one this many times slower than the usual p99 (a busy laptop's usual may be near it)
LOOK_S = 10.0  # what users saw over the last LOOK_S seconds is "now"
RUNG_WAIT_S = 30.0  # a lever's cost (a boot, a deploy, a DNS TTL) plus a window: then try the next rung
HEALTHY_CHECKS = 3  # users served this many checks in a row: mitigated
CONFIRM_CHECKS = 4  # users hurt (or an instance down) this many checks in a row before a lever: a blip is no
# incident; a data center going dark needs no confirming (the hurt users elsewhere may be its consequence)
POLL_S = 1.0
Rung = tuple[str, str, str, str, str | dict[str, Any]]  # what to declare (symptom, where, fault type), the lever


class Team:
    """The team API, from the team's link: `Authorization: Bearer <code>` on every call."""

    def __init__(self, link: str) -> None:
        parts = urlsplit(link)
        code = parse_qs(parts.query).get("code", [""])[0]
        if not code:
            raise SystemExit(f"no ?code= in {link!r}: give the team's link")
        self.http = httpx.Client(
            base_url=f"{parts.scheme}://{parts.netloc}", headers={"Authorization": f"Bearer {code}"}, timeout=30
        )

    def get(self, path: str, **params: Any) -> Any:
        answer = self.http.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, json=body)

    def exercise(self) -> dict[str, Any]:
        view: dict[str, Any] = self.get("/exercise")
        return view

    def declare(self, symptom: str, where: str, fault: str, text: str) -> None:
        self.post("/exercise/detect", {"symptom": symptom, "where": where, "fault": fault, "text": text})

    def act(self, action: str, target: str | dict[str, Any]) -> dict[str, Any]:
        answer = self.post("/exercise/act", {"action": action, "target": target})
        # the HTTP status last: a lever's body has a "status" of its own ("succeeded"), which hid the 200, so a
        # deploy never counted and a storm's auth was never restarted after it
        return {**answer.json(), "status": answer.status_code}


@dataclass
class Seen:
    """What users and hosts look like now."""

    success: dict[str, float | None]  # per data center, over the last LOOK_S
    p99_ms: dict[str, float | None]
    power: dict[str, bool]
    down: list[str]  # instances of a lit data center not running or not healthy
    hung: set[str]  # of those, the ones whose process runs but does not answer its health check in time
    dc_of: dict[str, str]

    def sick(self, usual_p99_ms: float) -> list[str]:
        """The data centers whose users are hurt (fewer served, or much slower than usual), worst first."""
        slow = max(SLOW_P99_MS, SLOWER * usual_p99_ms)
        hurt = [
            dc
            for dc, s in self.success.items()
            if (s is not None and s < GOOD_SUCCESS) or (self.p99_ms[dc] or 0) > slow
        ]
        return sorted(hurt, key=lambda dc: self.success[dc] or 0.0)

    def served(self, usual_p99_ms: float) -> bool:
        return not self.sick(usual_p99_ms) and not self.down and all(self.power.values())


def observe(team: Team) -> Seen:
    state = team.get("/room/state")
    series = team.get("/room/window", seconds=30, bucket=5)["series"]
    success: dict[str, float | None] = {}
    p99: dict[str, float | None] = {}
    for dc, buckets in series.items():
        recent = [b for b in buckets if b["requests"] and b["t"] >= series_now(series) - LOOK_S]
        served = sum(b["requests"] * b["success"] for b in recent)
        total = sum(b["requests"] for b in recent)
        success[dc] = served / total if total else None
        p99[dc] = max((b["p99_ms"] or 0.0 for b in recent), default=None)
    dc_of = {inst: dc for dc, insts in state["data_centers"].items() for inst in insts}
    down = [
        name
        for name, info in state["instances"].items()
        if state["power"].get(dc_of.get(name, ""), True) and not info.get("healthy")
    ]
    hung = {name for name in down if state["instances"][name].get("state") == "running"}
    return Seen(success, p99, state["power"], sorted(down), hung, dc_of)


def series_now(series: dict[str, list[dict[str, Any]]]) -> float:
    return max((b["t"] for buckets in series.values() for b in buckets), default=0.0)


@dataclass
class Responder:
    team: Team
    log: list[str] = field(default_factory=list)
    went_dark: set[str] = field(default_factory=set)  # data centers seen without power
    tried: set[str] = field(default_factory=set)
    usual_p99_ms: float | None = None  # what users' p99 was while all was well: learnt before anything is judged
    deploys: int = 0  # profiles deployed so far
    restarted: dict[str, int] = field(default_factory=dict)  # instance -> deploys done when it was last restarted

    def say(self, line: str) -> None:
        self.log.append(line)
        print(line, flush=True)

    def play(self, budget_s: float = 300.0) -> dict[str, Any]:
        """On call until the round ends (or the budget runs out): what it did, and when users were served again
        after its first lever. It stays on call after that: a late page is acknowledged, a relapse handled."""
        deadline = time.monotonic() + budget_s
        acted_at: float | None = None
        mitigated_after: float | None = None
        healthy = hurt = 0
        rung_started = 0.0
        while time.monotonic() < deadline and self.team.exercise()["state"] == "running":
            self.ack_page()
            seen = observe(self.team)
            self.went_dark |= {dc for dc, on in seen.power.items() if not on}
            hosts_up = all(seen.power.values()) and not seen.down
            if (self.usual_p99_ms is None and hosts_up) or (acted_at is None and seen.served(self.usual_p99_ms or 0)):
                self.learn(seen)  # all looks well: this is what normal looks like
                hurt = 0
            elif acted_at is not None and seen.served(self.usual_p99_ms or 0):
                healthy, hurt = healthy + 1, 0
                if healthy == HEALTHY_CHECKS and mitigated_after is None:
                    mitigated_after = round(time.monotonic() - acted_at, 1)
                    self.say(f"users served again {mitigated_after:g}s after the first lever")
            else:
                healthy = 0
                # dark: no confirming; an instance down is confirmed like hurt users (on a busy machine a health
                # check may time out once, and restarting a healthy auth is itself an outage)
                hurt = CONFIRM_CHECKS if self.went_dark else hurt + 1
                waited = time.monotonic() - rung_started >= (RUNG_WAIT_S if acted_at else 0)
                if waited and hurt >= CONFIRM_CHECKS:
                    step = self.next_rung(seen)
                    if step is not None:
                        rung_started = time.monotonic()
                        acted_at = acted_at or rung_started
                        self.pull(*step)
            time.sleep(POLL_S)
        return {"mitigated": mitigated_after is not None, "after_s": mitigated_after, "log": self.log}

    def learn(self, seen: Seen) -> None:
        """The usual p99, once every data center has power, every instance is up and users are served."""
        measured = [p for p in seen.p99_ms.values() if p is not None]
        ok = (
            all(seen.power.values())
            and not seen.down
            and all(s is not None and s >= GOOD_SUCCESS for s in seen.success.values())
        )
        if measured and ok and len(seen.success) == len(seen.power):
            self.usual_p99_ms = max(self.usual_p99_ms or 0.0, *measured)

    def ack_page(self) -> None:
        view = self.team.exercise()
        if view["page"] and not view["page"].get("acked_at"):
            answer = self.team.post("/exercise/ack")
            self.say(f"page: {view['page']['text']}; acknowledged: {answer.status_code}")

    def next_rung(self, seen: Seen) -> Rung | None:
        """(symptom, where, fault type, action, target) of the first runbook rung not yet tried."""
        for dc in sorted(self.went_dark):
            boot: Rung = ("failed_requests", dc, "power-loss", "power-on", {"dc": dc, "boot_order": ["auth", "views"]})
            if self.fresh(boot, again=not seen.power[dc] or any(seen.dc_of[i] == dc for i in seen.down)):
                return boot
        sick = seen.sick(self.usual_p99_ms or 0.0)
        worst = sick[0] if sick else None
        if self.deploys:  # still failing after a deploy: the systems of record first, then whatever is down
            for instance in systems_of_record(seen.dc_of, worst):
                if rung := self.restart(instance, "failed_requests", "slow-dependency"):
                    return rung
        for instance in seen.down:
            fault = "slow-dependency" if instance in seen.hung else "process-crash"
            if rung := self.restart(instance, "failed_requests", fault):
                return rung
        if worst is None:
            return None
        healthy = [dc for dc in seen.success if dc not in sick]
        # views is on every feed's path: the runbook's first suspect, where the sick data center has one
        views = [i for i, dc in seen.dc_of.items() if dc == worst and i.startswith("views")]
        ladder: list[Rung] = [("slow_requests", i, "slow-dependency", "restart-instance", i) for i in views]
        if healthy:
            ladder.append(("failed_requests", worst, "network-partition", "drain", worst))
        ladder.append(("failed_requests", worst, "overload", "profile", "resilient"))
        return next((rung for rung in ladder if self.fresh(rung)), None)

    def restart(self, instance: str, symptom: str, fault: str) -> Rung | None:
        """Restarting ``instance``, if not tried yet or not since the last deploy: still sick after a deploy, a new
        process starts with the deployed profile (a restart before it, e.g. of an auth swamped by a login storm,
        came back to the same policies and the same storm)."""
        rung: Rung = (symptom, instance, fault, "restart-instance", instance)
        if self.fresh(rung, again=self.restarted.get(instance, self.deploys) < self.deploys):
            self.restarted[instance] = self.deploys
            return rung
        return None

    def fresh(self, rung: Rung, again: bool = False) -> bool:
        key = json.dumps(rung[3:], sort_keys=True)
        if key in self.tried and not again:
            return False
        self.tried.add(key)
        return True

    def pull(self, symptom: str, where: str, fault: str, action: str, target: str | dict[str, Any]) -> None:
        self.team.declare(symptom, where, fault, f"responder: {fault} at {where}; {action} {target}")
        answer = self.team.act(action, target)
        if action == "profile" and answer["status"] == 200:
            self.deploys += 1
        self.say(f"declared {symptom} {where} {fault}; {action} {json.dumps(target)} -> {answer['status']}")


def systems_of_record(dc_of: dict[str, str], worst: str | None) -> list[str]:
    """auth's instances, then views', the sickest data center's first: what every user's session and feed needs."""
    records = [i for i in dc_of if i.startswith(("auth", "views"))]
    return sorted(records, key=lambda i: (not i.startswith("auth"), dc_of[i] != worst, i))


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("link", help="the team's link: http://127.0.0.1:<port>/room?code=<code>")
    parser.add_argument("--budget", type=float, default=300.0, help="give up after this many seconds")
    opts = parser.parse_args(args)
    result = Responder(Team(opts.link)).play(opts.budget)
    print(json.dumps({k: v for k, v in result.items() if k != "log"}))
    return 0 if result["mitigated"] else 1


if __name__ == "__main__":
    sys.exit(main())
