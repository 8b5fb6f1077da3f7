"""Per data center time bins of requests (success ratio, p99, symptoms): the post-mortem's picture and the control
room's charts both draw them, from these."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chaos.report_model import percentile
from loadtest.requests_reader import RequestRow
from services.common.symptoms import RECORDED


@dataclass(frozen=True)
class Bin:
    t: float  # seconds since the origin, the bin's middle
    requests: int
    success: float | None  # None: no request in the bin (users stuck waiting, or gone): a gap, not a line
    p99_ms: float | None
    symptoms: dict[str, int] = field(default_factory=dict)  # recorded symptom -> how many users saw in the bin


def per_dc_bins(
    rows: Iterable[RequestRow],
    when: Callable[[RequestRow], float],
    origin: float,
    width_s: float,
    last: int,
    first: int | None = None,
) -> dict[str, list[Bin]]:
    """data center -> one bin per index ((when - origin) // width), from ``first`` (None: the data center's first
    bin with a row) to ``last`` included, data centers sorted. Rows outside that range are left out."""
    grouped: dict[str, dict[int, list[RequestRow]]] = {}
    for r in rows:
        grouped.setdefault(r.dc, {}).setdefault(int((when(r) - origin) // width_s), []).append(r)
    return {
        dc: [_bin(n, width_s, by_index.get(n, [])) for n in range(min(by_index) if first is None else first, last + 1)]
        for dc, by_index in sorted(grouped.items())
    }


def _bin(n: int, width_s: float, rs: list[RequestRow]) -> Bin:
    if not rs:
        return Bin((n + 0.5) * width_s, 0, None, None)
    return Bin(
        (n + 0.5) * width_s,
        len(rs),
        sum(r.ok for r in rs) / len(rs),
        percentile([r.latency_ms for r in rs], 99),
        {name: sum(r.symptom(name) for r in rs) for name in RECORDED},
    )
