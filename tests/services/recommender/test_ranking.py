"""sample_where: the uniform sample of the qualifying entries a full scan would give, from ~k tests."""

from __future__ import annotations

import random
from collections import Counter

from services.recommender.catalog import Entry
from services.recommender.ranking import sample_where

ENTRIES = [Entry(f"video-{i:04d}", "t", f"creator-{i % 7}", ("music",)) for i in range(400)]


def test_only_qualifying_entries_are_picked_each_once():
    rng = random.Random(1)
    for _ in range(200):
        picks = sample_where(ENTRIES, lambda e: e.creator_id != "creator-3", 5, rng)
        assert len(picks) == 5 == len({p.video_id for p in picks})
        assert all(p.creator_id != "creator-3" for p in picks)


def test_when_few_qualify_all_of_them_are_found():
    rare = {"video-0007", "video-0123", "video-0399"}
    picks = sample_where(ENTRIES, lambda e: e.video_id in rare, 5, random.Random(2))
    assert {p.video_id for p in picks} == rare
    assert sample_where(ENTRIES, lambda e: False, 5, random.Random(3)) == []
    assert sample_where([], lambda e: True, 5, random.Random(4)) == []


def test_every_qualifying_entry_is_as_likely_as_any_other():
    qualifying = {e.video_id for e in ENTRIES[::40]}  # 10 of 400: the scan fallback is exercised too
    rng = random.Random(5)
    hits = Counter(
        p.video_id for _ in range(5000) for p in sample_where(ENTRIES, lambda e: e.video_id in qualifying, 3, rng)
    )
    assert set(hits) == qualifying
    assert max(hits.values()) < 1.15 * min(hits.values())  # 1,500 expected each

    common = random.Random(6)
    hits = Counter(
        p.video_id
        for _ in range(20000)
        for p in sample_where(ENTRIES, lambda e: e.creator_id == "creator-0", 5, common)
    )
    expected = 20000 * 5 / sum(1 for e in ENTRIES if e.creator_id == "creator-0")
    assert all(0.8 * expected < n < 1.2 * expected for n in hits.values())
