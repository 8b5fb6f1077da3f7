"""What the chaos controller is doing, as gauges, so dashboards draw power and fault events on the
same time axis as the cascade.

The scenario engine calls ``set_power``, ``set_faults``, ``set_phase`` and ``set_hypothesis`` (on the
module's ``CONTROLLER`` or on its own ``ControllerMetrics``); Prometheus scrapes them from either the
ASGI app (mount it on the control API: ``app.mount("/metrics", metrics_asgi_app())``, a mounted app
skips the API's token check, which Prometheus could not pass) or ``serve_metrics`` (its own port).
A registry of its own, not the process-wide default: only these series, whatever else runs here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, make_asgi_app, start_http_server

from chaos.journal import EventName
from chaos.observability.run_record import fault_kind

PHASE_NONE = "none"


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.power = Gauge(
            "blackout_dc_power", "1 while the data center has power, 0 while it is cut", ["dc"], registry=self.registry
        )
        self.faults = Gauge(
            "blackout_controller_faults_active", "Faults in force, by kind", ["kind"], registry=self.registry
        )
        self.phase = Gauge(
            "blackout_scenario_phase",
            "1 for the scenario phase in force, 0 for the others seen",
            ["phase"],
            registry=self.registry,
        )
        self.hypothesis = Gauge(
            "blackout_hypothesis_ok",
            "1 while the steady-state hypothesis holds, 0 once violated",
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._phase = PHASE_NONE
        self._active: dict[str, str] = {}  # fault id -> kind, to count active faults by kind

    def set_power(self, dc: str, on: bool) -> None:
        self.power.labels(dc).set(1 if on else 0)

    def set_faults(self, kind: str, n: int) -> None:
        if n < 0:
            raise ValueError(f"a number of faults cannot be negative: {kind}={n}")
        self.faults.labels(kind).set(n)

    def set_phase(self, name: str) -> None:
        """One phase at a time: the previous one drops to 0 (so a step shows where each began)."""
        with self._lock:
            if self._phase != name:
                self.phase.labels(self._phase).set(0)
            self._phase = name
            self.phase.labels(name).set(1)

    def set_hypothesis(self, ok: bool) -> None:
        self.hypothesis.set(1 if ok else 0)

    def observe(self, event: dict[str, Any]) -> None:
        """Follow the run's journal events (power-off/on, phase, fault-on/off, hypothesis) as they happen."""
        kind = event.get("event")
        if kind in (EventName.POWER_OFF, EventName.POWER_ON) and "dc" in event:
            self.set_power(str(event["dc"]), kind == EventName.POWER_ON)
        elif kind == EventName.PHASE and "phase" in event:
            self.set_phase(str(event["phase"]))
        elif kind == EventName.HYPOTHESIS and event.get("met") is not None:  # None: no data, neither held nor not
            self.set_hypothesis(bool(event["met"]))
        elif kind in (EventName.FAULT_ON, EventName.FAULT_OFF):
            self._follow_fault(event)

    def _follow_fault(self, event: dict[str, Any]) -> None:
        fault_id = str(event.get("id"))
        kind: str | None
        with self._lock:
            if event["event"] == EventName.FAULT_ON:
                kind = self._active[fault_id] = fault_kind(event)
            elif (kind := self._active.pop(fault_id, None)) is None:
                return
            count = sum(1 for k in self._active.values() if k == kind)
        self.set_faults(kind, count)


CONTROLLER = ControllerMetrics()


def set_power(dc: str, on: bool) -> None:
    CONTROLLER.set_power(dc, on)


def set_faults(kind: str, n: int) -> None:
    CONTROLLER.set_faults(kind, n)


def set_phase(name: str) -> None:
    CONTROLLER.set_phase(name)


def set_hypothesis(ok: bool) -> None:
    CONTROLLER.set_hypothesis(ok)


def metrics_asgi_app(metrics: ControllerMetrics = CONTROLLER) -> Callable[..., Any]:
    return make_asgi_app(registry=metrics.registry)


@dataclass
class MetricsServer:
    url: str  # what to give Prometheus: http://127.0.0.1:PORT/metrics
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(metrics: ControllerMetrics = CONTROLLER, port: int = 0) -> MetricsServer:
    """Serve on 127.0.0.1 (port 0: the kernel picks one, read back from the bound socket)."""
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    return MetricsServer(f"http://127.0.0.1:{server.server_port}/metrics", server, thread)
