from __future__ import annotations

from services.views.api import HISTORY, history_path


def test_the_fast_path_builds_the_declared_history_route() -> None:
    assert history_path("viewer-0001") == HISTORY.format(user_id="viewer-0001") == "/users/viewer-0001/history"
