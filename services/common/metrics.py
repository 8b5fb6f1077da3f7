"""Prometheus metrics every service exports on /metrics (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter("blackout_http_requests_total", "Requests served", ["route", "method", "status"])
HTTP_LATENCY = Histogram("blackout_http_request_duration_seconds", "Time to serve", ["route"], buckets=LATENCY_BUCKETS)
# From asking for the writer to the end of the COMMIT (its fsync): a storage stall shows here, and only here
# (reads never wait for the writer). Every write queued behind a stalled commit counts its wait.
DB_WRITE_LATENCY = Histogram(
    "blackout_db_write_duration_seconds", "Write transactions, waiting for the writer included", buckets=LATENCY_BUCKETS
)

DEP_CALLS = Counter(
    "blackout_dependency_calls_total",
    "Logical calls to a dependency by final outcome (success, error, timeout, short_circuited, rejected)",
    ["dependency", "outcome"],
)
DEP_ATTEMPTS = Counter(
    "blackout_dependency_attempts_total", "HTTP attempts, retries included", ["dependency", "target"]
)
DEP_RETRIES = Counter("blackout_dependency_retries_total", "Attempts after the first", ["dependency"])
DEP_LATENCY = Histogram(
    "blackout_dependency_call_duration_seconds",
    "Logical call time, retries included",
    ["dependency"],
    buckets=LATENCY_BUCKETS,
)
FALLBACKS = Counter("blackout_fallbacks_total", "Answers served from a fallback", ["kind"])
BREAKER_STATE = Gauge("blackout_breaker_state", "0 closed, 1 half-open, 2 open", ["dependency", "target"])
BULKHEAD_IN_FLIGHT = Gauge("blackout_bulkhead_in_flight", "Calls in flight", ["dependency"])
BULKHEAD_REJECTED = Counter("blackout_bulkhead_rejected_total", "Calls refused by a full bulkhead", ["dependency"])
RETRY_BUDGET = Gauge("blackout_retry_budget_tokens", "Retries the budget allows now", ["dependency"])
REPLICATION_LAG = Gauge(
    "blackout_replication_lag_events", "Local records (views, uploads) not yet shipped to a replication peer", ["peer"]
)
REPLICATION_LAG_SECONDS = Gauge(
    "blackout_replication_lag_seconds", "Age of the oldest local record not yet shipped to a replication peer", ["peer"]
)
# What users were shown, counted where it is produced (the gateway); see services/gateway/symptoms.py.
FEED_ITEMS = Counter(
    "blackout_feed_items_total",
    "Feed items served, by recommendation source and how the view count was shown (ok, zero: a failed read "
    "shown as 0, stale, unavailable)",
    ["source", "views_status"],
)
EARNINGS_SERVED = Counter("blackout_earnings_served_total", "Earnings answers served, by status", ["status"])
FAULTS_ACTIVE = Gauge("blackout_faults_active", "Injected faults in force on this instance", ["kind"])
FAULT_INJECTIONS = Counter(
    "blackout_fault_injections_total",
    "Attempts (latency, error, blackhole) or incoming requests (brownout) an injected fault acted on",
    ["kind"],
)
