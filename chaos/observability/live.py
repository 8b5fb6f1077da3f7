"""Observing a run while it goes: the controller's gauges follow the journal's events, a real Prometheus
records everything (when installed), and the post-mortem is written when the run ends.

The scenario engine wraps its run in one context manager::

    with observe_run(topology, run_dir, bus, say=console.print):
        ...  # start the stack and the load, walk the scenario

``bus`` is the run's event bus (anything with ``subscribe() -> queue`` and ``unsubscribe(queue)``); without
one, call ``CONTROLLER.observe(event)`` (or the ``set_*`` functions) yourself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chaos.journal import EventName
from chaos.observability import prometheus
from chaos.observability.controller_metrics import CONTROLLER, ControllerMetrics, MetricsServer, serve_metrics
from chaos.observability.prometheus import INSTALL_HINT, PrometheusError, PrometheusHandle
from chaos.topology import Topology
from services.common.errors import BlackoutError


class Bus(Protocol):
    def subscribe(self) -> queue.Queue[dict[str, Any]]: ...

    def unsubscribe(self, q: queue.Queue[dict[str, Any]]) -> None: ...


QUIET_FOLLOWS = frozenset({EventName.POWER_OFF, EventName.POWER_ON})


@dataclass
class Observation:
    metrics: ControllerMetrics
    controller: MetricsServer
    prometheus: PrometheusHandle | None


@contextmanager
def observe_run(
    topology: Topology,
    run_dir: Path,
    bus: Bus | None = None,
    *,
    port: int = 9090,
    metrics: ControllerMetrics = CONTROLLER,
    say: Callable[[str], Any] = print,
    quiet: bool = False,
) -> Iterator[Observation]:
    """``quiet``: a hidden-fault exercise's round, whose team can scrape these gauges and query Prometheus: they
    follow power alone (what the team sees anyway); its faults, phases and checks are in its journal only."""
    for dc in topology.data_centers:
        metrics.set_power(dc, True)
    controller = serve_metrics(metrics, port=0)
    stop_following = _follow(bus, metrics, QUIET_FOLLOWS if quiet else None) if bus is not None else (lambda: None)
    handle = None
    try:
        try:
            handle = prometheus.start_prometheus(topology, run_dir, {"controller": controller.url}, port=port)
        except PrometheusError as exc:  # the run goes on without live metrics: they are not the experiment
            say(f"no live metrics: {exc}")
        if handle is None:
            if prometheus.binary() is None:
                say(INSTALL_HINT)
        else:
            for note in handle.notes:
                say(note)
            say(f"Prometheus records the run on {handle.url} (dashboards: docker compose up grafana)")
        yield Observation(metrics, controller, handle)
    finally:
        stop_following()
        if handle is not None:
            handle.stop()
        controller.stop()
        from chaos.observability.postmortem import write_postmortem  # matplotlib: loaded only when needed

        try:
            picture, notes = write_postmortem(run_dir)
            say(f"post-mortem: {notes} and {picture.name}")
        except BlackoutError as exc:
            say(f"no post-mortem: {exc}")


def _follow(bus: Bus, metrics: ControllerMetrics, only: frozenset[str] | None = None) -> Callable[[], None]:
    """Feed every event published on ``bus`` (``only`` these, if given) to ``metrics`` on a thread; returns the
    stopper."""
    events = bus.subscribe()
    stopped = threading.Event()

    def follow() -> None:
        while not stopped.is_set():
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if only is None or event.get("event") in only:
                metrics.observe(event)

    thread = threading.Thread(target=follow, name="controller-gauges", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(timeout=5)
        bus.unsubscribe(events)

    return stop
