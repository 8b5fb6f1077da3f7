"""How a feed is chosen, and the ladder it falls down when the views service cannot be read."""

from __future__ import annotations

import random
from collections.abc import Callable

from services.recommender.catalog import Catalog, Entry


def item(entry: Entry, source: str) -> dict:
    return {"video_id": entry.video_id, "title": entry.title, "creator_id": entry.creator_id, "source": source}


def personalized(
    catalog: Catalog, history: list[str], trending: list[str], limit: int, rng: random.Random
) -> list[dict]:
    """Unwatched videos of the creators and tags the user watches, mixed with what is trending."""
    watched = set(history)
    seen = [catalog.entries[v] for v in history if v in catalog.entries]
    creators = {e.creator_id for e in seen}
    tags = {t for e in seen for t in e.tags}

    def candidate(e: Entry) -> bool:
        return e.video_id not in watched and (e.creator_id in creators or not tags.isdisjoint(e.tags))

    picks = [item(e, "personalized") for e in sample_where(catalog.ordered, candidate, (limit + 1) // 2, rng)]
    chosen = {p["video_id"] for p in picks}
    fresh_trending = [v for v in trending if v not in watched and v not in chosen and v in catalog.entries]
    picks += [
        item(catalog.entries[v], "trending")
        for v in rng.sample(fresh_trending, min(len(fresh_trending), limit - len(picks)))
    ]
    rng.shuffle(picks)
    return picks


def sample_where(entries: list[Entry], keep: Callable[[Entry], bool], k: int, rng: random.Random) -> list[Entry]:
    """``rng.sample([e for e in entries if keep(e)], k)`` (fewer when fewer qualify), without testing
    every entry: draw positions at random until k qualify. Positions drawn without repeats form a random
    order, and the qualifying ones in it are a uniform sample, as the scan's. Most of the catalog
    qualifies for a user with any history, so this tests ~k entries instead of the whole catalog (the
    scan was the recommender's biggest cost per feed); when few qualify it scans what is left."""
    picks: list[Entry] = []
    drawn: set[int] = set()
    for _ in range(4 * k + 8):
        if len(picks) == k or len(drawn) == len(entries):
            return picks
        i = rng.randrange(len(entries))
        if i not in drawn:
            drawn.add(i)
            if keep(entries[i]):
                picks.append(entries[i])
    if len(picks) == k:
        return picks
    rest = [e for i, e in enumerate(entries) if i not in drawn and keep(e)]
    return picks + rng.sample(rest, min(len(rest), k - len(picks)))


def trending_only(catalog: Catalog, trending: list[str], limit: int, rng: random.Random) -> list[dict]:
    known = [v for v in trending if v in catalog.entries]
    return [item(catalog.entries[v], "trending") for v in rng.sample(known, min(len(known), limit))]
