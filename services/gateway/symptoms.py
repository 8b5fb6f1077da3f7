"""What users are shown instead of the truth, counted at the gateway where it is produced.

Labels are closed sets (anything unexpected counts as ``other``): no user or video ids, so the number
of series stays fixed however many users and videos there are. The values that mean a symptom come from
the registry (services/common/symptoms.py), the healthy ones are listed here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from services.common import symptoms
from services.common.metrics import EARNINGS_SERVED, FEED_ITEMS

SOURCES = frozenset({"personalized", "trending", "cached"}) | symptoms.served_values(symptoms.FEED_ITEMS, "source")
VIEW_STATUSES = frozenset({"ok"}) | symptoms.served_values(symptoms.FEED_ITEMS, "views_status")
# stale earnings still show an amount: no symptom, but a label of its own
EARNINGS_STATUSES = frozenset({"ok", "stale"}) | symptoms.served_values(symptoms.EARNINGS_SERVED, "status")
ZERO = "zero"  # a failed view count read shown as 0 (the item claims ok): zero_view_displays


def feed_item_labels(item: Mapping[str, Any], faked_zero: bool = False) -> tuple[str, str]:
    """(source, views_status) of one item; ``faked_zero``: a failed read shown as 0 views (status says ok)."""
    source = item.get("source")
    status = ZERO if faked_zero else item.get("views_status")
    return (
        source if source in SOURCES else "other",
        status if status in VIEW_STATUSES else "other",
    )


def count_feed_items(items: Iterable[Mapping[str, Any]], *, faked_zero: bool = False) -> None:
    for (source, status), n in Counter(feed_item_labels(item, faked_zero) for item in items).items():
        FEED_ITEMS.labels(source, status).inc(n)


def count_earnings(status: object) -> None:
    EARNINGS_SERVED.labels(status if status in EARNINGS_STATUSES else "other").inc()
