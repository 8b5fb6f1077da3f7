"""The routes every service serves beside its own (services/common/app.py, services/common/faults/routes.py,
the replication of services/common/replication.py): declared once, for the services and their callers (the
runtimes' health checks, the fault injector, the audit, the load test's edge, the benchmarks)."""

from __future__ import annotations

HEALTHZ = "/healthz"
METRICS = "/metrics"
ADMIN_PROFILE = "/admin/profile"  # GET/PUT the live profile (admin secret)
ADMIN_FAULTS = "/admin/faults"  # PUT/DELETE {ADMIN_FAULTS}/{fault_id}: a link fault (admin secret)
REPLICATION_STATUS = "/replication/status"  # a replicated store's peers and what each still waits for
KNOWN = "/known"  # after a replication path: which of these record ids the peer already has
