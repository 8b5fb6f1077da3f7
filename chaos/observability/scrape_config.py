"""Prometheus's configuration for one run, generated from the topology in force.

Every instance is a target labelled ``service``, ``instance`` (the instance's name, not host:port) and
``dc``; the labels come from here, not from the processes, so they are the same in every service and
their number is bounded by the topology. The services' targets are written to a file Prometheus watches
(file-based service discovery), so a topology that changes while Prometheus runs needs no restart.

Recording rules precompute what the dashboards and the report read most: success ratio and p99 per
service and data center, retry amplification per data center, and the same as the users saw them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from chaos.topology import Topology
from services.common.atomic_file import write_atomically
from services.common.errors import ConfigError

SCRAPE_INTERVAL = "1s"  # the demo's phases last seconds: coarser scrapes would blur the cascade
WINDOW = "10s"  # rate window of every rule: ten scrapes
SERVICES_JOB = "blackout-services"
USERS_JOB = "blackout-users"  # the load generator's processes, found as they start (see prometheus.py)
# Prometheus scraping /metrics and probing /healthz must not count as user traffic.
USER_ROUTES = 'route!~"/metrics|/healthz"'
NOT_5XX = 'status!~"5.."'
JOB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")

# Recording rule names (level:metric:operations), read by grafana/generate.py and the report.
SERVICE_SUCCESS = "dc_service:blackout_http_success_ratio:rate10s"
SERVICE_P99 = "dc_service:blackout_http_latency_seconds:p99_10s"
RETRY_AMPLIFICATION = "dc:blackout_retry_amplification:rate10s"
USER_SUCCESS = "dc_action:blackout_user_success_ratio:rate10s"
USER_P99 = "dc_action:blackout_user_latency_seconds:p99_10s"
USER_SUCCESS_DC = "dc:blackout_user_success_ratio:rate10s"


def _served(selector: str) -> str:
    return f"rate(blackout_http_requests_total{{{selector}}}[{WINDOW}])"


def recording_rules() -> dict[str, Any]:
    """The rules file: one group evaluated every scrape."""
    user_all = f"rate(blackout_user_requests_total[{WINDOW}])"
    user_ok = f'rate(blackout_user_requests_total{{outcome="ok"}}[{WINDOW}])'
    rules = {
        SERVICE_SUCCESS: (
            f"sum by (dc, service) ({_served(USER_ROUTES + ', ' + NOT_5XX)})"
            f" / sum by (dc, service) ({_served(USER_ROUTES)})"
        ),
        SERVICE_P99: (
            "histogram_quantile(0.99, sum by (dc, service, le) "
            f"(rate(blackout_http_request_duration_seconds_bucket{{{USER_ROUTES}}}[{WINDOW}])))"
        ),
        # HTTP attempts per logical dependency call, every layer of a data center together.
        RETRY_AMPLIFICATION: (
            f"sum by (dc) (rate(blackout_dependency_attempts_total[{WINDOW}]))"
            f" / sum by (dc) (rate(blackout_dependency_calls_total[{WINDOW}]))"
        ),
        USER_SUCCESS: f"sum by (dc, action) ({user_ok}) / sum by (dc, action) ({user_all})",
        USER_P99: (
            "histogram_quantile(0.99, sum by (dc, action, le) "
            f"(rate(blackout_user_request_duration_seconds_bucket[{WINDOW}])))"
        ),
        USER_SUCCESS_DC: f"sum by (dc) ({user_ok}) / sum by (dc) ({user_all})",
    }
    return {
        "groups": [
            {
                "name": "blackout",
                "interval": SCRAPE_INTERVAL,
                "rules": [{"record": k, "expr": v} for k, v in rules.items()],
            }
        ]
    }


def service_targets(topology: Topology, url: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """The file_sd entries: one per instance, labelled by service, instance name and data center. ``url``:
    instance -> the URL it is reached at (default: the topology's)."""
    url_of = url or topology.url
    return [
        {
            "targets": [urlsplit(url_of(name)).netloc],
            "labels": {"service": inst.service, "instance": name, "dc": dc},
        }
        for name, (dc, inst) in sorted(topology.instances().items())
    ]


def target_names(topology: Topology, url: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """Metric relabelling: a dependency's ``target`` label (the URL a service calls) becomes the instance
    name, so a breaker reads "views-east", not a port number that changes from run to run. ``url``: instance ->
    the URL the services call it at (default: the topology's)."""
    url_of = url or topology.url
    return [
        {
            "source_labels": ["target"],
            "regex": re.escape(url_of(name)),
            "target_label": "target",
            "replacement": name,
        }
        for name in sorted(topology.instances())
    ]


def _extra_job(name: str, url: str) -> dict[str, Any]:
    """A scrape job for one more endpoint (the controller, the load generator), given as a full URL."""
    if not JOB_NAME.fullmatch(name):
        raise ConfigError(f"extra target '{name}'", f"a job name must match {JOB_NAME.pattern}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
        raise ConfigError(f"extra target '{name}'", f"{url!r} is not an http(s)://host:port/path URL")
    return {
        "job_name": name,
        "scheme": parts.scheme,
        "metrics_path": parts.path or "/metrics",
        "static_configs": [{"targets": [f"{parts.hostname}:{parts.port}"], "labels": {"instance": name}}],
    }


def scrape_config(
    targets_file: Path, rules_file: Path, extra_targets: dict[str, str], relabel: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
            "scrape_timeout": "900ms",
        },
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            # The file is re-read when it changes; 1 s keeps a restarted topology's targets current.
            {
                "job_name": SERVICES_JOB,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
                "metric_relabel_configs": relabel or [],
            },
            {
                "job_name": USERS_JOB,
                "file_sd_configs": [{"files": [str(users_file(targets_file.parent))], "refresh_interval": "1s"}],
            },
            *(_extra_job(name, url) for name, url in sorted(extra_targets.items())),
        ],
    }


def write_config(topology: Topology, directory: Path, extra_targets: dict[str, str]) -> Path:
    """Write prometheus.yml, rules.yml and targets/services.json under ``directory``; the config's path."""
    directory = directory.resolve()  # Prometheus reads relative paths from the config file's folder, not ours
    (directory / "targets").mkdir(parents=True, exist_ok=True)
    targets_file = directory / "targets" / "services.json"
    rules_file = directory / "rules.yml"
    config_file = directory / "prometheus.yml"
    config = scrape_config(targets_file, rules_file, extra_targets, target_names(topology))  # validates first
    write_targets(topology, targets_file)
    write_user_targets(directory / "targets", {})
    rules_file.write_text(yaml.safe_dump(recording_rules(), sort_keys=False, width=200))
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_file


def write_targets(topology: Topology, targets_file: Path) -> None:
    _write_atomically(targets_file, service_targets(topology))


def users_file(targets_dir: Path) -> Path:
    return targets_dir / "users.json"


def write_user_targets(targets_dir: Path, ports: dict[str, int]) -> None:
    """One target per load-generator process (process id -> metrics port)."""
    entries = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"instance": f"locust-{pid}"}}
        for pid, port in sorted(ports.items())
    ]
    _write_atomically(users_file(targets_dir), entries)


def _write_atomically(path: Path, entries: list[dict[str, Any]]) -> None:
    """Prometheus re-reads a targets file when it changes: it must never see half of one."""
    write_atomically(path, json.dumps(entries, indent=2), mode=0o644)  # Prometheus may run as another user
