"""Per data center success rate and p99 over the last minutes, from the current run's requests.csv: what the
control room's charts draw. Read incrementally (only the bytes appended since the last call)."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any

from chaos.bins import per_dc_bins
from chaos.rundir import REQUESTS_FILE
from loadtest.requests_reader import RequestRow, RequestsReader

KEEP_S = 600.0  # rows older than this are dropped: the page shows at most the last few minutes


def current_run_dir(runs_root: Path) -> Path | None:
    """The run whose users are being served now: the newest run directory with a requests.csv."""
    newest: tuple[float, Path] | None = None
    for path in runs_root.glob(f"*/{REQUESTS_FILE}"):
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if newest is None or mtime > newest[0]:
            newest = (mtime, path.parent)
    return newest[1] if newest else None


class RequestWindow:
    def __init__(self) -> None:
        self._requests: RequestsReader | None = None
        self._rows: deque[RequestRow] = deque()  # in the order they finished
        self._lock = threading.Lock()

    def follow(self, run_dir: Path | None) -> None:
        path = run_dir / REQUESTS_FILE if run_dir else None
        with self._lock:
            if path != (self._requests.path if self._requests else None):
                self._requests = RequestsReader(path) if path else None
                self._rows.clear()
            if self._requests is None:
                return
            self._rows.extend(self._requests.read_new())
            if self._rows:
                newest = max(r.finished for r in list(self._rows)[-50:])
                while self._rows and self._rows[0].finished < newest - KEEP_S:
                    self._rows.popleft()

    def series(self, now: float, seconds: float, bucket_s: float) -> dict[str, list[dict[str, Any]]]:
        """dc -> buckets oldest first: {t (bucket end), requests, success (0..1 or None), p99_ms (or None)}."""
        start = now - seconds
        with self._lock:
            rows = [r for r in self._rows if start <= r.finished < now]
        bins = per_dc_bins(rows, lambda r: r.finished, start, bucket_s, last=int(seconds // bucket_s) - 1, first=0)
        return {
            dc: [
                {
                    "t": round(start + b.t + bucket_s / 2, 3),
                    "requests": b.requests,
                    "success": None if b.success is None else round(b.success, 4),
                    "p99_ms": None if b.p99_ms is None else round(b.p99_ms, 1),
                }
                for b in dc_bins
            ]
            for dc, dc_bins in bins.items()
        }
