"""Prometheus metrics of overload protection (registered in the process's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SHED = Counter("blackout_overload_shed_total", "Requests refused at once with 503 by admission control", ["priority"])
ADMITTED_IN_FLIGHT = Gauge("blackout_admission_in_flight", "Requests admitted and not yet answered", ["priority"])
ADMISSION_LIMIT = Gauge("blackout_admission_limit", "The adaptive limit on requests in flight")
# Calls refused by client throttling: blackout_dependency_calls_total{outcome="throttled"}.
# Labelled by the optional work, so only a service that has a dimmer exports it (an unlabelled gauge would
# read 0, "everything dimmed", in every other service).
FULL_SHARE = Gauge(
    "blackout_dimmer_full_share", "Share of requests served with their optional work (1: all)", ["optional"]
)
