"""Every PromQL expression of every dashboard panel and annotation, run against a real Prometheus that
recorded a real power loss: each must parse, and each the scenario lights up must return data.

The stack: the fragile topology (views and auth only in dc-east) under the resilient profile, so that
breakers open, budgets drain, fallbacks are served and the power cut shows in every panel. Traffic is a
few users driven with httpx (bounded in count and time), recorded through loadtest/metrics.py as locust
would; the controller's gauges are set as the scenario engine would set them.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from chaos.observability import prometheus
from chaos.observability.controller_metrics import ControllerMetrics, serve_metrics
from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
from loadtest import metrics as user_metrics
from loadtest import records
from services.common.seed import DEMO_PASSWORD

PROJECT = Path(__file__).resolve().parents[3]
GRAFANA = PROJECT / "grafana"
BASELINE_S, OUTAGE_S, RECOVERY_S = 8.0, 14.0, 10.0
USERS = ("creator-001", "viewer-0001", "creator-002", "viewer-0002", "creator-003", "viewer-0003")
MAX_REQUESTS = 3000  # all users together; at ~5/s per user the phases stay well below it
THINK_S = 0.2
REQUEST_TIMEOUT_S = 3.0
DRILL_DOWN_SERVICE = "gateway"  # the $service the drill-down is checked with: it calls every dependency

# (dashboard, panel or annotation title, refId) -> why it may be empty in a power loss.
MAY_BE_EMPTY = {
    ("cascade.json", "Faults (controller)", ""): "a power loss injects no fault",
    ("cascade.json", "Faults (instances)", ""): "a power loss injects no fault",
    ("service.json", "Faults (controller)", ""): "a power loss injects no fault",
    ("service.json", "Faults (instances)", ""): "a power loss injects no fault",
    ("policies.json", "Faults (controller)", ""): "a power loss injects no fault",
    ("policies.json", "Faults (instances)", ""): "a power loss injects no fault",
    ("policies.json", "Bulkhead rejections", "A"): "six users never fill a bulkhead of 64",
    ("policies.json", "Open breakers per data center", "B"): "half-open lasts one trial call, shorter than a scrape",
}

needs_prometheus = pytest.mark.skipif(
    prometheus.binary() is None,
    reason="NO PROMETHEUS BINARY: the panel queries cannot be checked; "
    "apt-get install -y --no-install-recommends prometheus (CI does: .ci/install-prometheus)",
)


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))}


def expressions() -> list[tuple[tuple[str, str, str], str]]:
    """((dashboard, title, refId), PromQL) for every panel target and annotation; variables filled in."""
    found = []
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(((name, panel["title"], target["refId"]), target["expr"]))
        for annotation in board["annotations"]["list"]:
            found.append(((name, annotation["name"], ""), annotation["expr"]))
    return [(key, expr.replace("$service", DRILL_DOWN_SERVICE)) for key, expr in found]


class Users:
    """A few demo users, each on its own thread against its home data center's gateway."""

    def __init__(self, gateways: dict[str, str], exported: user_metrics.UserMetrics) -> None:
        self.gateways = list(gateways.items())
        self.exported = exported
        self.stop = threading.Event()
        self.sent = itertools.count()
        self.knowledge = records.ViewKnowledge()
        self.threads = [threading.Thread(target=self._user, args=(n, name), daemon=True) for n, name in enumerate(USERS)]

    def __enter__(self) -> Users:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)

    def _user(self, n: int, username: str) -> None:
        dc, gateway = self.gateways[n % len(self.gateways)]
        actions = itertools.cycle(("feed", "view", "earnings") if username.startswith("creator") else ("feed", "view"))
        token, last_feed = None, ["video-0001"]
        with httpx.Client(base_url=gateway, timeout=REQUEST_TIMEOUT_S) as client:
            while not self.stop.wait(THINK_S) and next(self.sent) < MAX_REQUESTS:
                action = "login" if token is None else next(actions)
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                status, body, started, extra = 0, None, time.perf_counter(), {}
                try:
                    if action == "login":
                        answer = client.post("/login", json={"username": username, "password": DEMO_PASSWORD})
                    elif action == "feed":
                        answer = client.get("/feed", params={"limit": 10}, headers=headers)
                    elif action == "view":
                        answer = client.post(f"/videos/{last_feed[0]}/view", json={"event_id": f"{username}-{time.time_ns()}"}, headers=headers)
                    else:
                        answer = client.get("/me/earnings", headers=headers)
                    status, body = answer.status_code, answer.json()
                except (httpx.HTTPError, ValueError):
                    pass
                ok = 200 <= status < 300
                if action == "login" and ok:
                    token = body["token"]
                if action == "feed" and ok:
                    items = body["items"]
                    last_feed = records.feed_video_ids(items) or last_feed
                    extra = {"zero_view_displays": self.knowledge.zero_views(items), "stale_views": records.count_stale_views(items),
                             "generic_feeds": int(records.is_generic_feed(items))}  # fmt: skip
                if action == "earnings":
                    extra = {"earnings_missing": int(records.earnings_missing(ok, body))}
                self.exported.observe(records.request_row(
                    t=time.time(), user=username, dc=dc, action=action, ok=int(ok), status=status,
                    latency_ms=(time.perf_counter() - started) * 1000.0, **extra,
                ))  # fmt: skip


def query_range(url: str, expr: str, start: float, end: float) -> dict:
    answer = httpx.get(url + "/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": "1s"}, timeout=30)
    return answer.json()


def wait_for(url: str, expr: str, since: float, timeout_s: float = 30.0) -> None:
    """Until ``expr`` has a sample at or after ``since`` (scraped, or evaluated by a rule)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = httpx.get(url + "/api/v1/query", params={"query": f"timestamp({expr})"}, timeout=5).json()["data"]["result"]
        if result and max(float(r["value"][1]) for r in result) >= since:
            return
        time.sleep(0.2)  # poll interval
    raise AssertionError(f"Prometheus has no sample of {expr} after {since}")


@pytest.fixture(scope="module")
def recorded_outage(tmp_path_factory):
    """A real power loss recorded by a real Prometheus: (Prometheus URL, start, end)."""
    run_dir = tmp_path_factory.mktemp("observed-run")
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    controller = ControllerMetrics()
    controller_server = serve_metrics(controller, port=0)
    exported = user_metrics.UserMetrics()
    user_metrics.serve(exported, run_dir, 0)
    runtime = LocalRuntime(topology, run_dir, profile=PROJECT / "profiles" / "resilient.yaml")
    handle = None
    try:
        with runtime:
            topology = runtime.topology  # the ports it bound
            handle = prometheus.start_prometheus(topology, run_dir, {"controller": controller_server.url}, port=0)
            for dc in topology.data_centers:
                controller.set_power(dc, True)
            controller.set_hypothesis(True)
            start = time.time()
            with Users(topology.gateways(), exported):
                controller.set_phase("baseline")
                time.sleep(BASELINE_S)  # the phase's length: traffic runs meanwhile
                controller.set_phase("outage")
                runtime.power_off("dc-east")
                controller.set_power("dc-east", False)
                controller.set_hypothesis(False)
                time.sleep(OUTAGE_S)
                controller.set_phase("recovery")
                runtime.power_on("dc-east")
                controller.set_power("dc-east", True)
                time.sleep(RECOVERY_S)
            end = time.time()
            wait_for(handle.url, 'up{instance="gateway-west"}', end)
            wait_for(handle.url, "dc:blackout_user_success_ratio:rate10s", end)
        yield handle.url, start, end
    finally:
        if handle is not None:
            handle.stop()
        controller_server.stop()


@needs_prometheus
def test_every_panel_and_annotation_query_parses_and_shows_the_outage(recorded_outage):
    url, start, end = recorded_outage
    checked, empty, broken = 0, [], []
    for key, expr in expressions():
        answer = query_range(url, expr, start, end)
        checked += 1
        if answer.get("status") != "success":
            broken.append(f"{key}: {expr}: {answer.get('error')}")
        elif not answer["data"]["result"] and key not in MAY_BE_EMPTY:
            empty.append(f"{key}: {expr}")
    assert checked >= 40
    assert not broken, "queries Prometheus refused:\n" + "\n".join(broken)
    assert not empty, "queries that showed nothing in a power loss:\n" + "\n".join(empty)


@needs_prometheus
def test_the_outage_is_visible_where_it_should_be(recorded_outage):
    url, start, end = recorded_outage

    def values(expr: str) -> list[float]:
        return [float(v) for series in query_range(url, expr, start, end)["data"]["result"] for _, v in series["values"]]

    assert 0 in values('blackout_dc_power{dc="dc-east"}') and 1 in values('blackout_dc_power{dc="dc-east"}')
    assert 2 in values('max(blackout_breaker_state{instance="gateway-west", target="views-east"})')  # it opened
    east_users = values('dc:blackout_user_success_ratio:rate10s{dc="dc-east"}')
    assert min(east_users) < 0.5 < max(east_users)  # dc-east's users lost service, then got it back
    assert max(values('sum(rate(blackout_fallbacks_total{dc="dc-west"}[10s]))')) > 0  # dc-west served fallbacks


@needs_prometheus
def test_the_drill_down_variable_lists_every_service(recorded_outage):
    url, _, _ = recorded_outage
    service = dashboards()["service.json"]["templating"]["list"][0]
    assert service["query"] == "label_values(blackout_http_requests_total, service)"
    names = httpx.get(url + "/api/v1/label/service/values", params={"match[]": "blackout_http_requests_total"}, timeout=5).json()
    assert set(names["data"]) == {"auth", "views", "earnings", "recommender", "gateway"}

