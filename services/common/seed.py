"""The deterministic demo world: users, creators, a video catalog and a history of views.

Every service instance seeds its own store from here, so two instances of one service start identical.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from typing import Any

DEMO_PASSWORD = "blackout-demo"
N_VIEWERS, N_CREATORS, N_VIDEOS = 200, 30, 400
GENERIC_FEED_SIZE = 10
_WORDS = (
    "sunset cat drone recipe street dance guitar skate rain city ocean tiny epic morning lab retro "
    "garden speedrun puppy mountain neon kitchen science prank vlog jazz chess sneaker forest"
).split()
TAGS = ("music", "comedy", "food", "sports", "pets", "travel", "tech", "art", "gaming", "diy")


@dataclass(frozen=True)
class Video:
    video_id: str
    title: str
    creator_id: str
    tags: tuple[str, ...]


# The demo world's names, from their number (1-based): the one place their format is written.
def viewer_name(n: int) -> str:
    return f"viewer-{n:04d}"


def creator_name(n: int) -> str:
    return f"creator-{n:03d}"


def video_name(n: int) -> str:
    return f"video-{n:04d}"


def viewer_names() -> list[str]:
    return [viewer_name(i) for i in range(1, N_VIEWERS + 1)]


def creator_names() -> list[str]:
    return [creator_name(i) for i in range(1, N_CREATORS + 1)]


@cache
def catalog(seed: int = 42) -> tuple[Video, ...]:
    rng = random.Random(seed)
    creators = creator_names()
    return tuple(
        Video(
            video_id=video_name(i),
            title=" ".join(rng.sample(_WORDS, 3)).capitalize(),
            creator_id=creators[rng.randrange(len(creators))],
            tags=tuple(rng.sample(TAGS, 2)),
        )
        for i in range(1, N_VIDEOS + 1)
    )


@cache
def popularity(seed: int = 42) -> tuple[Video, ...]:
    """The catalog from most to least viewed in the seeded history."""
    videos = list(catalog(seed))
    random.Random(seed + 1).shuffle(videos)  # popularity independent of the catalog order
    return tuple(videos)


def generic_feed(seed: int = 42) -> list[Video]:
    """What a feed falls back to when nothing is known: the same all-time hits for everyone."""
    return list(popularity(seed)[:GENERIC_FEED_SIZE])


def seed_view_events(seed: int = 42) -> list[tuple[str, str, str, float]]:
    """(event_id, video_id, user_id, t): a long-tailed history so feeds show real, non-zero counts."""
    rng = random.Random(seed + 2)
    viewers = viewer_names()
    events = [
        (f"seed-{video.video_id}-{n}", video.video_id, rng.choice(viewers), 0.0)
        for rank, video in enumerate(popularity(seed), start=1)
        for n in range(max(1, int(600 / rank**0.7)))
    ]
    rng.shuffle(events)  # interleaved in time, so the most recent events trend like the whole history
    return [(eid, vid, uid, 1_700_000_000.0 + i) for i, (eid, vid, uid, _) in enumerate(events)]


def generic_items(limit: int, seed: int = 42) -> list[dict[str, Any]]:
    """The generic feed as feed items (what every user sees when nothing better can be read)."""
    return [
        {"video_id": v.video_id, "title": v.title, "creator_id": v.creator_id, "source": "generic"}
        for v in generic_feed(seed)[:limit]
    ]
