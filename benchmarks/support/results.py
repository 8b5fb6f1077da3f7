"""Where benchmark figures go: one JSON file per run under benchmarks/results/, and a verdict line."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parents[1] / "results"


def save(benchmark: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    record = {
        "benchmark": benchmark,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version(), "load_1m": psutil.getloadavg()[0]},
        **figures,
    }
    path = RESULTS / f"{benchmark}-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def verdict(figure: str, measured: str, goal: str, met: bool) -> str:
    return f"{'PASS' if met else 'MISS'}  {figure}: {measured} (goal {goal})"


def conclude(benchmark: str, figures: dict[str, Any], checks: list[tuple[str, str, str, bool]], started: float) -> int:
    """Print each (figure, measured, goal, met), save them with ``figures``; the exit code (1: a goal missed)."""
    for figure, measured, goal, met in checks:
        print(verdict(figure, measured, goal, met))
    path = save(
        benchmark,
        {
            **figures,
            "goals": [{"figure": f, "measured": m, "goal": g, "met": ok} for f, m, g, ok in checks],
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    print(f"saved {path}")
    return 0 if all(met for *_, met in checks) else 1
