"""Per data center time bins of requests (success ratio, p99): the post-mortem's picture and the control room's
charts both draw them, from these."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chaos.report_model import percentile

Row = tuple[float, str, bool, float]  # (when, data center, ok, latency ms)


@dataclass(frozen=True)
class Bin:
    t: float  # seconds since the origin, the bin's middle
    requests: int
    success: float | None  # None: no request in the bin (users stuck waiting, or gone): a gap, not a line
    p99_ms: float | None


def per_dc_bins(rows: Iterable[Row], origin: float, width_s: float, last: int, first: int | None = None) -> dict[str, list[Bin]]:
    """data center -> one bin per index, from ``first`` (None: the data center's first bin with a row) to ``last``
    included, data centers sorted. Rows outside that range are left out."""
    grouped: dict[str, dict[int, list[tuple[bool, float]]]] = {}
    for when, dc, ok, latency in rows:
        grouped.setdefault(dc, {}).setdefault(int((when - origin) // width_s), []).append((ok, latency))
    return {dc: [_bin(n, width_s, by_index.get(n, [])) for n in range(min(by_index) if first is None else first, last + 1)]
            for dc, by_index in sorted(grouped.items())}  # fmt: skip


def _bin(n: int, width_s: float, rows: list[tuple[bool, float]]) -> Bin:
    if not rows:
        return Bin((n + 0.5) * width_s, 0, None, None)
    return Bin((n + 0.5) * width_s, len(rows), sum(ok for ok, _ in rows) / len(rows), percentile([lat for _, lat in rows], 99))
