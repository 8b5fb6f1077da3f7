"""Every PromQL expression of every dashboard panel and annotation, run against the Prometheus of a real
`blackout run` of a power loss: each must parse, and each the scenario lights up must return data.

The run goes through the product's path: the scenario engine starts the stack (the fragile topology, views
and auth only in dc-east, under the resilient profile, so that breakers open, budgets drain and fallbacks
are served), locust's users (exporting what they saw on the port each process reports), its own Prometheus
(which finds those ports) and the controller's gauges. The test then serves the run's recorded samples
again, as `blackout prometheus runs/<run>` does, and queries them.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fakes.scenarios import short_power_loss
from rich.console import Console

from chaos.engine.run import RunOptions
from chaos.journal import Journal
from chaos.observability import prometheus
from chaos.stack import run_scenario

PROJECT = Path(__file__).resolve().parents[3]
GRAFANA = PROJECT / "grafana"
DRILL_DOWN_SERVICE = "gateway"  # the $service the drill-down is checked with: it calls every dependency
# What users saw, exported by the load generator: empty in every real run until `blackout run` gave locust
# its metrics port.
USER_PANELS = (
    "Users: success ratio per data center",
    "Users: p99 latency per action",
    "Symptoms users saw",
    "Fallbacks served",
)

# (dashboard, panel or annotation title, refId) -> why it may be empty in a power loss.
MAY_BE_EMPTY = {
    ("cascade.json", "Faults (controller)", ""): "a power loss injects no fault",
    ("cascade.json", "Faults (instances)", ""): "a power loss injects no fault",
    ("service.json", "Faults (controller)", ""): "a power loss injects no fault",
    ("service.json", "Faults (instances)", ""): "a power loss injects no fault",
    ("policies.json", "Faults (controller)", ""): "a power loss injects no fault",
    ("policies.json", "Faults (instances)", ""): "a power loss injects no fault",
    ("policies.json", "Bulkhead rejections", "A"): "ten users never fill a bulkhead of 64",
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


def query_range(url: str, expr: str, start: float, end: float) -> dict:
    answer = httpx.get(
        url + "/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": "1s"}, timeout=30
    )
    return answer.json()


@pytest.fixture(scope="module")
def recorded_outage(tmp_path_factory):
    """A real `blackout run` of a power loss, its samples served again: (Prometheus URL, start, end)."""
    root = tmp_path_factory.mktemp("observed-run")
    options = RunOptions(
        scenario=short_power_loss(root, off_at=8, on_at=22, duration=32),
        profile=PROJECT / "profiles" / "resilient.yaml",
        topology=PROJECT / "topologies" / "fragile.yaml",
        seed=7,
        runs_root=root / "runs",
        any_ports=True,
        prometheus_port=0,
    )
    run_dir = run_scenario(options, Console(record=True, width=120)).run_dir
    events = Journal(run_dir).read()
    start, end = events[0]["t"], next(e["t"] for e in events if e["event"] == "end")
    with prometheus.serve_run(run_dir, port=0) as handle:
        yield handle.url, start, end


@needs_prometheus
def test_every_panel_and_annotation_query_parses_and_shows_the_outage(recorded_outage):
    url, start, end = recorded_outage
    checked, empty, broken = 0, set(), []
    for key, expr in expressions():
        answer = query_range(url, expr, start, end)
        checked += 1
        if answer.get("status") != "success":
            broken.append(f"{key}: {expr}: {answer.get('error')}")
        elif not answer["data"]["result"]:
            empty.add(key)
    assert checked >= 40
    assert not broken, "queries Prometheus refused:\n" + "\n".join(broken)
    users = [key for key, _ in expressions() if key[1] in USER_PANELS]
    assert {key[1] for key in users} == set(USER_PANELS)  # the dashboards still have those panels
    assert not [key for key in users if key in empty], "the users' panels showed nothing"
    assert not empty - set(MAY_BE_EMPTY), "queries that showed nothing in a power loss:\n" + "\n".join(
        map(str, sorted(empty - set(MAY_BE_EMPTY)))
    )
