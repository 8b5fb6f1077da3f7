"""Symptoms are counted at the gateway where they are produced, with closed label sets."""

from __future__ import annotations

import pytest
from fakes.stack import client_for
from prometheus_client import REGISTRY
from test_gateway import AUTH, DEPS, World

from services.gateway.symptoms import feed_item_labels


def served(source: str, status: str) -> float:
    return REGISTRY.get_sample_value("blackout_feed_items_total", {"source": source, "views_status": status}) or 0.0


def earnings(status: str) -> float:
    return REGISTRY.get_sample_value("blackout_earnings_served_total", {"status": status}) or 0.0


@pytest.mark.parametrize(
    ("item", "faked", "labels"),
    [
        ({"source": "personalized", "views_status": "ok"}, False, ("personalized", "ok")),
        ({"source": "generic", "views_status": "ok"}, True, ("generic", "zero")),
        ({"source": "cached", "views_status": "stale"}, False, ("cached", "stale")),
        ({"source": "video-0042", "views_status": "weird"}, False, ("other", "other")),  # never an id as a label
    ],
)
def test_item_labels_are_closed_sets(item, faked, labels):
    assert feed_item_labels(item, faked) == labels


def test_a_failed_count_read_shown_as_zero_is_counted_as_zero(tmp_path):
    world = World()
    with client_for("gateway", tmp_path, world, DEPS, profile="naive") as gateway:
        ok_before, zero_before = served("personalized", "ok"), served("personalized", "zero")
        assert gateway.get("/feed", headers=AUTH).status_code == 200
        assert served("personalized", "ok") == ok_before + 2
        world.down.add("views")
        items = gateway.get("/feed", headers=AUTH).json()["items"]
        assert {i["views"] for i in items} == {0}  # the user sees 0 views, the status claims ok...
        assert served("personalized", "zero") == zero_before + 2  # ...the metric tells the truth


def test_earnings_answers_are_counted_by_status(tmp_path):
    world = World()
    with client_for("gateway", tmp_path, world, DEPS, profile="naive") as gateway:
        ok_before, gone_before = earnings("ok"), earnings("unavailable")
        gateway.get("/me/earnings", headers=AUTH)
        world.down.add("earnings")
        assert gateway.get("/me/earnings", headers=AUTH).json()["status"] == "unavailable"
        assert (earnings("ok"), earnings("unavailable")) == (ok_before + 1, gone_before + 1)
