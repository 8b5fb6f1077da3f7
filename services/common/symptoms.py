"""The one registry of symptoms: what users see go wrong, beyond plain failures and slowness.

Every place that names a symptom reads it from here: the load generator's ``requests.csv`` columns
(loadtest/records.py) and the user metrics' ``symptom`` label (loadtest/metrics.py), the scenarios'
``symptom:`` probes (chaos/engine/scenario.py), the report's tables (chaos/report*.py,
chaos/observability/postmortem.py) and the gateway's closed label sets (services/gateway/symptoms.py).
A new symptom is one entry here plus the code that detects it (the locustfile, for a recorded one).
"""

from __future__ import annotations

from dataclasses import dataclass

FEED_ITEMS = "blackout_feed_items_total"  # services/common/metrics.py: FEED_ITEMS
EARNINGS_SERVED = "blackout_earnings_served_total"  # services/common/metrics.py: EARNINGS_SERVED


@dataclass(frozen=True)
class ServedAs:
    """How the gateway's own counter labels the answers that show the symptom, where they are produced."""

    metric: str
    label: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Symptom:
    name: str  # requests.csv column, `symptom:` probe name, report field, user metrics' `symptom` label
    title: str  # how the report names it
    action: str  # the user action whose requests show it
    # True: the load generator counts it per request (a requests.csv column); False: a failed `action` is it
    recorded: bool = True
    served_as: ServedAs | None = None  # None: the gateway cannot tell (only the user can)
    # True: the user is shown something false (a failure, not a degradation: the fault-space search's oracle,
    # chaos/search/oracle.py); False: an honest sign that something is missing or old
    misleads: bool = False


SYMPTOMS: tuple[Symptom, ...] = (
    # feed items shown with 0 views although the user knew the video had some (a failed read shown as 0)
    Symptom(
        "zero_view_displays",
        "zero-view displays",
        "feed",
        served_as=ServedAs(FEED_ITEMS, "views_status", ("zero",)),
        misleads=True,
    ),
    # feed items whose view count was marked stale or unavailable
    Symptom(
        "stale_views",
        "stale/unavailable view counts",
        "feed",
        served_as=ServedAs(FEED_ITEMS, "views_status", ("stale", "unavailable")),
    ),
    # a creator asked for earnings and got none (a failure, or `earnings_cents: null`)
    Symptom(
        "earnings_missing",
        "earnings missing",
        "earnings",
        served_as=ServedAs(EARNINGS_SERVED, "status", ("unavailable",)),
    ),
    Symptom("failed_logins", "failed logins", "login", recorded=False),
    Symptom("failed_uploads", "failed uploads", "upload", recorded=False),
    # the same video list as the user's previous feed
    Symptom("repeated_feeds", "repeated feeds", "feed"),
    # every item of the feed is the generic fallback, nothing personal
    Symptom("generic_feeds", "generic feeds", "feed", served_as=ServedAs(FEED_ITEMS, "source", ("generic",))),
)
NAMES: tuple[str, ...] = tuple(s.name for s in SYMPTOMS)
RECORDED: tuple[str, ...] = tuple(s.name for s in SYMPTOMS if s.recorded)  # requests.csv's symptom columns
_BY_NAME = {s.name: s for s in SYMPTOMS}


def symptom(name: str) -> Symptom:
    """The symptom called ``name``; ValueError listing the known ones otherwise (a scenario's typo)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown symptom {name!r}; symptoms: {', '.join(NAMES)}") from None


def served_values(metric: str, label: str) -> frozenset[str]:
    """The values of one label of a gateway counter that mean a symptom."""
    return frozenset(
        v
        for s in SYMPTOMS
        if s.served_as and (s.served_as.metric, s.served_as.label) == (metric, label)
        for v in s.served_as.values
    )
