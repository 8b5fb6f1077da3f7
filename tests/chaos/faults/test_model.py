"""Durations as data: 20s, 500ms, 2m, or seconds."""

from __future__ import annotations

import pytest

from chaos.faults.model import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [("20s", 20), ("500ms", 0.5), ("2m", 120), (3, 3), ("1.5s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1s", True, "3h", None])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)
