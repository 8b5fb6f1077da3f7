"""A run's movable end (chaos/engine/extension.py): what is added, who is told, what is refused. The end moved on
a real round, its users and held fault going on: tests/chaos/workshop/test_game_master.py."""

from __future__ import annotations

import pytest

from chaos.engine.extension import MAX_EXTENSION_S, Extension


def test_every_extension_adds_up_and_each_listener_hears_the_total():
    extension, heard = Extension(), []
    assert extension.seconds == 0
    extension.on_extend(heard.append)
    assert extension.extend(30) == 30 and extension.extend(15.5) == 45.5
    assert heard == [30, 45.5] and extension.seconds == 45.5


@pytest.mark.parametrize("seconds", [0, -5, float("nan")])
def test_a_non_positive_extension_is_refused_and_changes_nothing(seconds):
    extension = Extension()
    with pytest.raises(ValueError, match="positive"):
        extension.extend(seconds)
    assert extension.seconds == 0


def test_the_total_is_capped_and_a_refused_extension_tells_no_one():
    extension, heard = Extension(), []
    extension.on_extend(heard.append)
    extension.extend(MAX_EXTENSION_S - 10)
    with pytest.raises(ValueError, match=f"at most {MAX_EXTENSION_S:g}s"):
        extension.extend(11)
    assert extension.seconds == MAX_EXTENSION_S - 10 and heard == [MAX_EXTENSION_S - 10]
