"""How a feed is chosen, and the ladder it falls down when the views service cannot be read."""
from __future__ import annotations

import random
from collections import Counter

from services.recommender.catalog import Catalog, Entry


def item(entry: Entry, source: str) -> dict:
    return {"video_id": entry.video_id, "title": entry.title, "creator_id": entry.creator_id, "source": source}


def personalized(catalog: Catalog, history: list[str], trending: list[str], limit: int, rng: random.Random) -> list[dict]:
    """Unwatched videos of the creators and tags the user watches, mixed with what is trending."""
    watched = set(history)
    seen = [catalog.entries[v] for v in history if v in catalog.entries]
    creators = Counter(e.creator_id for e in seen)
    tags = Counter(t for e in seen for t in e.tags)
    candidates = [
        e for e in catalog.entries.values()
        if e.video_id not in watched and (e.creator_id in creators or any(t in tags for t in e.tags))
    ]
    picks = [item(e, "personalized") for e in rng.sample(candidates, min(len(candidates), (limit + 1) // 2))]
    chosen = {p["video_id"] for p in picks}
    fresh_trending = [v for v in trending if v not in watched and v not in chosen and v in catalog.entries]
    picks += [item(catalog.entries[v], "trending") for v in rng.sample(fresh_trending, min(len(fresh_trending), limit - len(picks)))]
    rng.shuffle(picks)
    return picks


def trending_only(catalog: Catalog, trending: list[str], limit: int, rng: random.Random) -> list[dict]:
    known = [v for v in trending if v in catalog.entries]
    return [item(catalog.entries[v], "trending") for v in rng.sample(known, min(len(known), limit))]
