"""Blackout's Grafana dashboards as code: `python grafana/generate.py` writes grafana/dashboards/*.json
(`--check` only compares, exit 1 when they differ; tests/grafana/test_dashboards.py runs it).

Built with grafana-foundation-sdk. Every query reads the labels the generated scrape config gives
each target (service, instance, dc) and the recording rules of chaos/observability/scrape_config.py;
annotations draw the controller's power, fault and phase gauges on the same time axis.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import AnnotationQuery, Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh, VariableSort

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # run as a script from anywhere: the rule names live in chaos/

from chaos.observability import scrape_config as rules  # noqa: E402

DASHBOARDS_DIR = ROOT / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="blackout-prometheus")
W = "10s"  # the rate window of every panel, as of the rules (ten 1 s scrapes)
USER_ROUTES = rules.USER_ROUTES
SERVICES = 'job="blackout-services"'
LEGEND_DS = "{{service}} {{dc}}"


def panel(
    title: str, unit: str, description: str, *queries: tuple[str, str], span: int = 12, max_val: float | None = None
) -> Timeseries:
    """A time series panel; each query is (PromQL, legend)."""
    built = Timeseries().title(title).description(description).unit(unit).datasource(DATASOURCE).span(span).height(8)
    built = built.min(0).fill_opacity(10)
    if max_val is not None:
        built = built.max(max_val)
    for n, (expr, legend) in enumerate(queries):
        built = built.with_target(
            Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + n)).datasource(DATASOURCE)
        )
    return built


def annotations() -> list[AnnotationQuery]:
    """Power cuts, faults and phases from the controller's gauges (a series present = an event)."""

    def query(name: str, expr: str, color: str) -> AnnotationQuery:
        return AnnotationQuery().name(name).datasource(DATASOURCE).enable(True).icon_color(color).expr(expr)

    return [
        query("Power off", "blackout_dc_power == 0", "red"),
        query("Faults (controller)", "blackout_controller_faults_active > 0", "orange"),
        query("Faults (instances)", "sum by (dc, kind) (blackout_faults_active) > 0", "yellow"),
        query("Phase", "blackout_scenario_phase == 1", "blue"),
    ]


# Grafana's Prometheus annotation options the SDK does not model: how each event is titled.
ANNOTATION_EXTRAS = {
    "Power off": {"titleFormat": "power off {{dc}}", "tagKeys": "dc"},
    "Faults (controller)": {"titleFormat": "{{kind}} faults", "tagKeys": "kind"},
    "Faults (instances)": {"titleFormat": "{{kind}} in {{dc}}", "tagKeys": "dc,kind"},
    "Phase": {"titleFormat": "{{phase}}", "tagKeys": "phase"},
}


def base(uid: str, title: str, description: str) -> Dashboard:
    board = Dashboard(title).uid(uid).description(description).tags(["blackout"]).refresh("5s").time("now-15m", "now")
    return board.timezone("utc").annotations(annotations())


def cascade() -> Dashboard:
    board = base(
        "blackout-cascade", "Blackout: the cascade", "A data center loses power: what fails where, and what users see."
    )
    board = board.with_row(Row("Power and users"))
    board = board.with_panel(
        panel(
            "Power per data center",
            "none",
            "1 powered, 0 cut (from the chaos controller)",
            ("blackout_dc_power", "{{dc}}"),
            (f"sum by (dc) (up{{{SERVICES}}})", "{{dc}} instances up"),
        )
    )
    board = board.with_panel(
        panel(
            "Users: success ratio per data center",
            "percentunit",
            "Share of user actions that succeeded, as locust saw them",
            (rules.USER_SUCCESS_DC, "{{dc}}"),
            max_val=1,
        )
    )
    board = board.with_panel(
        panel(
            "Users: p99 latency per action",
            "s",
            "What the slowest 1% waited, per action and home data center",
            (rules.USER_P99, "{{action}} {{dc}}"),
            span=24,
        )
    )
    board = board.with_row(Row("Services"))
    board = board.with_panel(
        panel(
            "Success ratio per service",
            "percentunit",
            "Answers below 500 per service and data center (probes excluded)",
            (rules.SERVICE_SUCCESS, LEGEND_DS),
            max_val=1,
        )
    )
    board = board.with_panel(
        panel(
            "p99 latency per service",
            "s",
            "Time to serve, 99th percentile, per service and data center",
            (rules.SERVICE_P99, LEGEND_DS),
        )
    )
    board = board.with_panel(
        panel(
            "Breaker states",
            "none",
            "0 closed, 1 half-open, 2 open: per caller, dependency and target",
            (
                "max by (instance, dependency, target) (blackout_breaker_state)",
                "{{instance}} -> {{dependency}} {{target}}",
            ),
        )
    )
    board = board.with_panel(
        panel(
            "Retry amplification per data center",
            "none",
            "HTTP attempts per logical dependency call: above 1 retries multiply the load, below 1 breakers and deadlines refuse calls unsent",
            (rules.RETRY_AMPLIFICATION, "{{dc}}"),
        )
    )
    board = board.with_panel(
        panel(
            "Dependency calls by outcome",
            "reqps",
            "Logical calls per second by final outcome, per calling data center",
            (f"sum by (dc, outcome) (rate(blackout_dependency_calls_total[{W}]))", "{{outcome}} {{dc}}"),
            span=24,
        )
    )
    board = board.with_panel(
        panel(
            "Database writes: p99 per instance",
            "s",
            "From asking for the writer to the end of the commit (its fsync), queueing included: a stall of the "
            "storage shows here, in every instance that shares the disk at once, while reads stay fast",
            (
                f"histogram_quantile(0.99, sum by (instance, le) (rate(blackout_db_write_duration_seconds_bucket[{W}])))",
                "{{instance}}",
            ),
            span=24,
        )
    )
    board = board.with_row(Row("Fallbacks and symptoms"))
    board = board.with_panel(
        panel(
            "Fallbacks served",
            "reqps",
            "Answers served from a fallback, by kind",
            (f"sum by (dc, kind) (rate(blackout_fallbacks_total[{W}]))", "{{kind}} {{dc}}"),
        )
    )
    board = board.with_panel(
        panel(
            "Feed items by view-count status",
            "short",
            "zero = a failed read shown as 0 views; stale, unavailable = honest",
            (f"sum by (dc, views_status) (rate(blackout_feed_items_total[{W}]))", "{{views_status}} {{dc}}"),
        )
    )
    board = board.with_panel(
        panel(
            "Feed items by recommendation source",
            "short",
            "personalized, cached, trending or generic",
            (f"sum by (dc, source) (rate(blackout_feed_items_total[{W}]))", "{{source}} {{dc}}"),
        )
    )
    board = board.with_panel(
        panel(
            "Earnings answers by status",
            "reqps",
            "ok, stale (last known), unavailable (earnings vanished)",
            (f"sum by (dc, status) (rate(blackout_earnings_served_total[{W}]))", "{{status}} {{dc}}"),
        )
    )
    return board.with_panel(
        panel(
            "Symptoms users saw",
            "short",
            "Counted by the load generator from what it was shown (per second)",
            (f"sum by (dc, symptom) (rate(blackout_user_symptoms_total[{W}]))", "{{symptom}} {{dc}}"),
            span=24,
        )
    )


def service() -> Dashboard:
    board = base(
        "blackout-service", "Blackout: one service", "Drill-down: one service's routes, dependencies and policies."
    )
    board = board.with_variable(
        QueryVariable("service")
        .label("service")
        .datasource(DATASOURCE)
        .query("label_values(blackout_http_requests_total, service)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )
    one = 'service="$service"'
    board = board.with_row(Row("Routes (RED)"))
    board = board.with_panel(
        panel(
            "Requests by route and status",
            "reqps",
            "Per instance; probes excluded",
            (
                f"sum by (instance, route, status) (rate(blackout_http_requests_total{{{one}, {USER_ROUTES}}}[{W}]))",
                "{{instance}} {{route}} {{status}}",
            ),
        )
    )
    board = board.with_panel(
        panel(
            "Latency by route (p50, p99)",
            "s",
            "Time to serve per instance and route",
            *(
                (
                    f"histogram_quantile({q}, sum by (instance, route, le) "
                    f"(rate(blackout_http_request_duration_seconds_bucket{{{one}, {USER_ROUTES}}}[{W}])))",
                    f"p{int(q * 100)} {{{{instance}}}} {{{{route}}}}",
                )
                for q in (0.5, 0.99)
            ),
        )
    )
    board = board.with_panel(
        panel(
            "Instances up",
            "none",
            "1 while Prometheus can scrape it",
            (f"up{{{SERVICES}, {one}}}", "{{instance}} ({{dc}})"),
        )
    )
    board = board.with_row(Row("Dependencies"))
    board = board.with_panel(
        panel(
            "Dependency calls by outcome",
            "reqps",
            "success, error, timeout, short_circuited, rejected, deadline",
            (
                f"sum by (instance, dependency, outcome) (rate(blackout_dependency_calls_total{{{one}}}[{W}]))",
                "{{instance}} -> {{dependency}} {{outcome}}",
            ),
        )
    )
    board = board.with_panel(
        panel(
            "Dependency call p99",
            "s",
            "Logical call time, retries and failover included",
            (
                f"histogram_quantile(0.99, sum by (instance, dependency, le) "
                f"(rate(blackout_dependency_call_duration_seconds_bucket{{{one}}}[{W}])))",
                "{{instance}} -> {{dependency}}",
            ),
        )
    )
    board = board.with_panel(
        panel(
            "Attempts per target",
            "reqps",
            "HTTP attempts, retries included, by the instance they went to",
            (
                f"sum by (instance, dependency, target) (rate(blackout_dependency_attempts_total{{{one}}}[{W}]))",
                "{{instance}} -> {{target}}",
            ),
        )
    )
    board = board.with_panel(
        panel(
            "Breaker states",
            "none",
            "0 closed, 1 half-open, 2 open",
            (f"blackout_breaker_state{{{one}}}", "{{instance}} -> {{dependency}} {{target}}"),
        )
    )
    return board.with_panel(
        panel(
            "Retries and fallbacks",
            "reqps",
            "Attempts after the first; answers served from a fallback",
            (
                f"sum by (instance, dependency) (rate(blackout_dependency_retries_total{{{one}}}[{W}]))",
                "retries {{instance}} -> {{dependency}}",
            ),
            (
                f"sum by (instance, kind) (rate(blackout_fallbacks_total{{{one}}}[{W}]))",
                "fallback {{instance}} {{kind}}",
            ),
            span=24,
        )
    )


def policies() -> Dashboard:
    board = base(
        "blackout-policies", "Blackout: policies", "What the resilience policies did: breakers, budgets, bulkheads."
    )
    board = board.with_row(Row("Breakers"))
    board = board.with_panel(
        panel(
            "Open breakers per data center",
            "none",
            "Breakers open (2) or half-open (1), counted per calling data center",
            ("count by (dc) (blackout_breaker_state == 2)", "open {{dc}}"),
            ("count by (dc) (blackout_breaker_state == 1)", "half-open {{dc}}"),
        )
    )
    board = board.with_panel(
        panel(
            "Calls short-circuited or out of time",
            "reqps",
            "Refused before sending: an open breaker, or no deadline left",
            (
                f'sum by (dc, dependency, outcome) (rate(blackout_dependency_calls_total{{outcome=~"short_circuited|deadline"}}[{W}]))',
                "{{outcome}} {{dependency}} {{dc}}",
            ),
        )
    )
    board = board.with_row(Row("Retries and budgets"))
    board = board.with_panel(
        panel(
            "Retries per second",
            "reqps",
            "Attempts after the first, per dependency",
            (f"sum by (dc, dependency) (rate(blackout_dependency_retries_total[{W}]))", "{{dependency}} {{dc}}"),
        )
    )
    board = board.with_panel(
        panel(
            "Retry budget tokens",
            "short",
            "Retries each budget allows now (0: retries stop)",
            ("min by (instance, dependency) (blackout_retry_budget_tokens)", "{{instance}} -> {{dependency}}"),
        )
    )
    board = board.with_panel(
        panel(
            "Retry amplification per data center",
            "none",
            "Attempts per logical call (below 1: calls refused unsent)",
            (rules.RETRY_AMPLIFICATION, "{{dc}}"),
        )
    )
    board = board.with_panel(
        panel(
            "Users: success ratio per data center",
            "percentunit",
            "The outcome the policies are for",
            (rules.USER_SUCCESS_DC, "{{dc}}"),
            max_val=1,
        )
    )
    board = board.with_row(Row("Bulkheads"))
    board = board.with_panel(
        panel(
            "Bulkhead calls in flight",
            "short",
            "Concurrent calls per dependency (the bulkhead caps them)",
            ("max by (instance, dependency) (blackout_bulkhead_in_flight)", "{{instance}} -> {{dependency}}"),
        )
    )
    return board.with_panel(
        panel(
            "Bulkhead rejections",
            "reqps",
            "Calls refused at once by a full bulkhead",
            (f"sum by (dc, dependency) (rate(blackout_bulkhead_rejected_total[{W}]))", "{{dependency}} {{dc}}"),
        )
    )


DASHBOARDS = {"cascade.json": cascade, "service.json": service, "policies.json": policies}


def render(board: Dashboard) -> str:
    data = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    # Grafana fills in defaults for missing keys, not for nulls (a null "options" breaks a panel).
    data["panels"] = [{k: v for k, v in p.items() if v is not None} for p in data["panels"]]
    for annotation in data["annotations"]["list"]:
        annotation.update(ANNOTATION_EXTRAS[annotation["name"]], step="1s")
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render_all() -> dict[str, str]:
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print("usage: python grafana/generate.py [--check]", file=sys.stderr)
        return 2
    stale = []
    for name, text in render_all().items():
        path = DASHBOARDS_DIR / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            DASHBOARDS_DIR.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python grafana/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
