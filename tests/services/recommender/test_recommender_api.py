from __future__ import annotations

from services.recommender.api import RECOMMENDATIONS, recommendations_path


def test_the_fast_path_builds_the_declared_recommendations_route() -> None:
    assert recommendations_path("u-1") == RECOMMENDATIONS.format(user_id="u-1") == "/recommendations/u-1"
