"""Per data center success rate and p99 over the last minutes, from the current run's requests.csv: what the
control room's charts draw. Read incrementally (only the bytes appended since the last call)."""
from __future__ import annotations

import threading
from collections import defaultdict, deque
from pathlib import Path

from chaos.report_model import percentile
from chaos.rundir import REQUESTS_FILE
from loadtest.requests_reader import RequestsReader

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
        self._rows: deque[tuple[float, str, bool, float]] = deque()  # (finished at, dc, ok, latency ms)
        self._lock = threading.Lock()

    def follow(self, run_dir: Path | None) -> None:
        path = run_dir / REQUESTS_FILE if run_dir else None
        with self._lock:
            if path != (self._requests.path if self._requests else None):
                self._requests = RequestsReader(path) if path else None
                self._rows.clear()
            if self._requests is None:
                return
            self._rows.extend((r.finished, r.dc, r.ok, r.latency_ms) for r in self._requests.read_new())
            if self._rows:
                newest = max(r[0] for r in list(self._rows)[-50:])
                while self._rows and self._rows[0][0] < newest - KEEP_S:
                    self._rows.popleft()

    def series(self, now: float, seconds: float, bucket_s: float) -> dict[str, list[dict]]:
        """dc -> buckets oldest first: {t (bucket end), requests, success (0..1 or None), p99_ms (or None)}."""
        start = now - seconds
        buckets: dict[str, dict[int, list[tuple[bool, float]]]] = defaultdict(lambda: defaultdict(list))
        with self._lock:
            for done, dc, ok, latency in self._rows:
                if start <= done < now:
                    buckets[dc][int((done - start) // bucket_s)].append((ok, latency))
        count = int(seconds // bucket_s)
        out: dict[str, list[dict]] = {}
        for dc, by_index in sorted(buckets.items()):
            out[dc] = []
            for i in range(count):
                rows = by_index.get(i, [])
                out[dc].append({
                    "t": round(start + (i + 1) * bucket_s, 3), "requests": len(rows),
                    "success": round(sum(ok for ok, _ in rows) / len(rows), 4) if rows else None,
                    "p99_ms": round(percentile([lat for _, lat in rows], 99), 1) if rows else None,
                })  # fmt: skip
        return out
