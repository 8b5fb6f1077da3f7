"""The room's pager: an SLO burn-rate alert on what users saw (requests.csv), multi-window as in the Google SRE
Workbook's "Alerting on SLOs" (chapter 5, the multiwindow, multi-burn-rate alerts): page when the error budget
burns at 14.4x or more over a long window AND a short one (the short one makes the page stop soon after the burn
does, and keeps one old spike in the long window from paging).

The workbook's fast-burn pair is 1 h and 5 min for a 30-day SLO: 14.4x for 1 h spends 2% of the month's budget.
A round lasts minutes, so the windows are scaled to it: the long window is 1/24 of the round (an hour of a day),
at least LONG_MIN_S so it holds enough requests; the short one is 1/12 of the long one (5 min of an hour), at
least SHORT_MIN_S. A request is good when it succeeded within LATENCY_SLO_MS (the library's feed p99 bound).

A request hanging on a dark data center writes no row until its user gives up (tens of seconds), so a window
of silence would look healthy: as the score does (chaos/workshop/score.py ``missing``), the pager counts the
requests users were owed and did not get as bad. What they are owed: the median rate of finished requests over
the long windows seen so far this round (per data center and for all users): a median, so neither a burst
nor the outage itself moves it much (the maximum would page on a chance dip of a few requests).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from loadtest.requests_reader import RequestRow
from services.common.names import GATEWAY, SERVICES

SLO = 0.99  # of users' requests are good: the error budget is 1%
FAST_BURN = 14.4
LATENCY_SLO_MS = 2500.0
LONG_MIN_S, SHORT_MIN_S = 20.0, 5.0
MIN_REQUESTS = 5  # fewer requests in the short window: too few to page on
ALL = "all users"
# docs/runbooks/<service>.md: the page links them, the gateway first (users' requests enter there)
RUNBOOKS: tuple[str, ...] = (GATEWAY, *(s for s in SERVICES if s != GATEWAY))


@dataclass(frozen=True)
class Windows:
    long_s: float
    short_s: float

    @classmethod
    def for_round(cls, round_s: float) -> Windows:
        long_s = max(LONG_MIN_S, round_s / 24)
        return cls(round(long_s, 1), round(max(SHORT_MIN_S, long_s / 12), 1))


@dataclass(frozen=True)
class Burn:
    scope: str  # a data center's users, or ALL
    long: float  # burn rates: the share of bad requests / the error budget
    short: float
    requests: int  # in the short window, the owed ones that never finished included


def good(row: RequestRow) -> bool:
    return row.ok and row.latency_ms <= LATENCY_SLO_MS


def burn_rate(outcomes: Iterable[bool]) -> tuple[float, int]:
    """(burn rate, requests) of the good/bad outcomes of one window."""
    seen = list(outcomes)
    if not seen:
        return 0.0, 0
    return (seen.count(False) / len(seen)) / (1.0 - SLO), len(seen)


def burns(
    rows: Iterable[RequestRow], now: float, windows: Windows, owed: Mapping[str, float] | None = None
) -> list[Burn]:
    """The burn rates of every data center's users and of all users, over the two windows ending at ``now``;
    ``owed``: scope -> requests a second users were owed (the ones missing from a window count as bad)."""
    recent = [(r.dc, good(r), r.finished) for r in rows if now - windows.long_s < r.finished <= now]
    found = []
    for scope in [ALL, *sorted({dc for dc, _, _ in recent} | set(owed or {}) - {ALL})]:
        mine = [(ok, t) for dc, ok, t in recent if scope in (ALL, dc)]
        rate = (owed or {}).get(scope, 0.0)
        long, _ = burn_rate(_with_missing([ok for ok, _ in mine], rate * windows.long_s))
        short, n = burn_rate(_with_missing([ok for ok, t in mine if t > now - windows.short_s], rate * windows.short_s))
        found.append(Burn(scope, round(long, 1), round(short, 1), n))
    return found


def _with_missing(outcomes: list[bool], expected: float) -> list[bool]:
    """The window's outcomes, plus a bad one for each request users were owed that never finished."""
    return outcomes + [False] * max(0, int(expected) - len(outcomes))


def finished_rates(rows: Iterable[RequestRow], now: float, window_s: float) -> dict[str, float]:
    """Requests a second that finished over the window ending at ``now``, per data center and for ALL."""
    counts: dict[str, int] = {ALL: 0}
    for r in rows:
        if now - window_s < r.finished <= now:
            counts[ALL] += 1
            counts[r.dc] = counts.get(r.dc, 0) + 1
    return {scope: n / window_s for scope, n in counts.items()}


def firing(found: list[Burn]) -> Burn | None:
    """The burn that pages: both windows at FAST_BURN or more, enough requests; all users first."""
    return next((b for b in found if b.long >= FAST_BURN and b.short >= FAST_BURN and b.requests >= MIN_REQUESTS), None)


@dataclass
class Page:
    t: float
    scope: str
    burn_long: float
    burn_short: float
    long_s: float
    short_s: float
    acked_at: float | None = None
    runbooks: tuple[str, ...] = RUNBOOKS

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        return (
            f"SLO burn: {self.scope} burning the error budget at {self.burn_long:g}x over {self.long_s:g} s "
            f"and {self.burn_short:g}x over {self.short_s:g} s (pages at {FAST_BURN:g}x; SLO {SLO:.0%} of requests "
            f"good within {LATENCY_SLO_MS / 1000:g} s)"
        )


class Pager:
    """Fed the rows users finish, pages once per round; a page stays until acknowledged (and after, for the
    score). Rows older than the long window are dropped."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self.page: Page | None = None
        self._rows: deque[RequestRow] = deque()
        self._first: float | None = None
        self._since: float | None = None  # rows that started before it are not watched (None: every row)
        self._rates: dict[str, list[float]] = {}  # scope -> its rate of finished requests at every check
        self.owed: dict[str, float] = {}  # scope -> the median of those

    def watch_from(self, t: float) -> None:
        """Watch the requests that started at ``t`` or later: the scenario's baseline, once the users are in.
        Their ramp is no incident: on a busy machine the first logins fail for tens of seconds, and a page then
        came before any fault (a team that declared on it lost a false alarm's points)."""
        self._since = t

    @property
    def watching(self) -> bool:
        return self._since is not None

    def feed(self, rows: Iterable[RequestRow]) -> None:
        for row in rows:
            if self._since is not None and row.t < self._since:
                continue
            self._rows.append(row)
            self._first = row.finished if self._first is None else min(self._first, row.finished)

    def check(self, now: float) -> Page | None:
        """The page, the first time the burn crosses (None before, and every time after)."""
        while self._rows and self._rows[0].finished <= now - self.windows.long_s - 60:  # a late row: kept a minute
            self._rows.popleft()
        if self.page is not None or self._first is None or now - self._first < self.windows.long_s:
            return None  # one page a round; and never before a whole long window of users was seen
        for scope, rate in finished_rates(self._rows, now, self.windows.long_s).items():
            self._rates.setdefault(scope, []).append(rate)
            self.owed[scope] = statistics.median(self._rates[scope])
        burn = firing(burns(self._rows, now, self.windows, self.owed))
        if burn is None:
            return None
        self.page = Page(now, burn.scope, burn.long, burn.short, self.windows.long_s, self.windows.short_s)
        return self.page
