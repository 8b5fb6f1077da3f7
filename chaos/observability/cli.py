"""`blackout prometheus RUN_DIR`: serve a finished run's recorded samples again (for Grafana or the
Prometheus UI) until Ctrl-C."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from urllib.parse import urlencode

from chaos.journal import Journal
from chaos.observability.prometheus import serve_run


def cmd_prometheus(args: argparse.Namespace) -> int:
    handle = serve_run(args.run_dir, port=args.port)
    try:
        for note in handle.notes:
            print(note)
        print(f"Prometheus serves {args.run_dir} on {handle.url}")
        window = run_window(args.run_dir)
        if window is not None:
            start, end = window
            print(
                f"the run: {_clock(start)} to {_clock(end)} (UTC); graph: {handle.url}/graph?{_graph_query(start, end)}"
            )
        print("Grafana: see grafana/provisioning (datasource uid blackout-prometheus). Ctrl-C stops.")
        while handle.process.poll() is None:
            time.sleep(0.5)  # wait for Ctrl-C (or Prometheus dying)
        return 1
    finally:
        handle.stop()


def run_window(run_dir: Path) -> tuple[float, float] | None:
    events = Journal(run_dir).read()  # in time order
    return (events[0]["t"], events[-1]["t"]) if events else None


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _graph_query(start: float, end: float) -> str:
    return urlencode(
        {
            "g0.expr": "dc_service:blackout_http_success_ratio:rate10s",
            "g0.tab": "0",
            "g0.range_input": f"{max(1, int(end - start) + 60)}s",
            "g0.end_input": _clock(end + 30),
        }
    )


def add_prometheus_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("prometheus", help="serve a finished run's metrics again with a real Prometheus")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--port", type=int, default=9090, help="127.0.0.1 port (0: any free one; taken: another)")
    parser.set_defaults(func=cmd_prometheus)
