"""What users saw, for Prometheus: every ``requests.csv`` row also counted per action, data center and
outcome, its latency observed, its symptoms added up.

The locustfile wraps its request recorder (``REQUESTS = exporting(REQUESTS, RUN_DIR)``), so the metrics
and the CSV are fed from the same row and cannot disagree. With ``BLACKOUT_LOCUST_METRICS_PORT`` set
(0: any free port) they are served on 127.0.0.1 and the bound port is written to
``RUN_DIR/locust-metrics-<pid>.port`` (one per locust process: a master and its workers each
serve their own) for whoever configures Prometheus (chaos/observability/prometheus.py watches them).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from services.common.symptoms import RECORDED

PORT_ENV = "BLACKOUT_LOCUST_METRICS_PORT"
PORT_FILES = "locust-metrics-*.port"
# Timeouts reach 10 s in the naive profile: the top buckets keep the outage's tail visible.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30)


class Recorder(Protocol):
    def write(self, row: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class UserMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "blackout_user_requests_total",
            "User requests by action, home data center and outcome (ok, error, no_answer)",
            ["action", "dc", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "blackout_user_request_duration_seconds",
            "Time a user waited, the app's own retries included",
            ["action", "dc"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.symptoms = Counter(
            "blackout_user_symptoms_total",
            "Symptoms users saw (feed items for the view-count ones), by data center",
            ["dc", "symptom"],
            registry=self.registry,
        )

    def observe(self, row: Mapping[str, Any]) -> None:
        action, dc = str(row["action"]), str(row["dc"])
        self.requests.labels(action, dc, outcome(row)).inc()
        self.latency.labels(action, dc).observe(float(row["latency_ms"]) / 1000.0)
        for symptom in RECORDED:  # the label is the symptom's name, as in requests.csv
            n = int(row.get(symptom) or 0)
            if n:
                self.symptoms.labels(dc, symptom).inc(n)


def outcome(row: Mapping[str, Any]) -> str:
    if int(row["ok"]):
        return "ok"
    return "no_answer" if int(row["status"] or 0) == 0 else "error"


class ExportingRecorder:
    """A recorder that also feeds ``UserMetrics`` (the row is written first: the CSV is the record)."""

    def __init__(self, inner: Recorder, metrics: UserMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def write(self, row: Mapping[str, Any]) -> None:
        self.inner.write(row)
        self.metrics.observe(row)

    def close(self) -> None:
        self.inner.close()


def serve(metrics: UserMetrics, run_dir: Path, port: int) -> int:
    """Serve on 127.0.0.1:``port`` and write the port actually bound to ``run_dir/PORT_FILE``."""
    server, _ = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    bound = int(server.server_port)
    final = run_dir / PORT_FILES.replace("*", str(os.getpid()))
    partial = final.with_suffix(".tmp")
    partial.write_text(f"{bound}\n")
    partial.replace(final)  # readers never see a half-written number
    return bound


def bound_ports(run_dir: Path) -> dict[str, int]:
    """process id -> metrics port, for every locust process of the run that wrote one."""
    found = {}
    for path in sorted(run_dir.glob(PORT_FILES)):
        text = path.read_text().strip()
        if text.isdigit():
            found[path.stem.removeprefix("locust-metrics-")] = int(text)
    return found


def port_from_env(environ: Mapping[str, str] = os.environ) -> int | None:
    raw = environ.get(PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError(f"{PORT_ENV} must be a port number (0 for any free port), got {raw!r}")
    return int(raw)


def exporting(recorder: Recorder, run_dir: Path, environ: Mapping[str, str] = os.environ) -> ExportingRecorder:
    """The locustfile's one hook: wrap its requests recorder; serve the metrics when the env asks."""
    metrics = UserMetrics()
    try:
        port = port_from_env(environ)
        if port is not None:
            serve(metrics, run_dir, port)
    except (ValueError, OSError) as exc:  # one clear line and exit 2, like the locustfile's own checks
        sys.stderr.write(f"blackout locustfile: cannot export user metrics: {exc}\n")
        raise SystemExit(2) from None
    return ExportingRecorder(recorder, metrics)
