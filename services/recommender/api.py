"""The recommender's contract: its routes, limits and bodies, for the recommender (services/recommender/app.py,
its fast path services/recommender/hot.py, its catalog's replication services/recommender/replica.py) and its
callers (the gateway, earnings)."""

from __future__ import annotations

from typing import TypedDict

from pydantic import BaseModel, Field

from services.common.ids import Id

RECOMMENDATIONS = "/recommendations/{user_id}"  # GET ?limit= -> Feed
UPLOAD = "/videos"  # POST Upload, the creator in services.common.perimeter.USER_HEADER (internal)
VIDEO = "/videos/{video_id}"
CREATOR_VIDEOS = "/creators/{creator_id}/videos"  # GET -> CreatorVideos
REPLICATION_VIDEOS = "/replication/videos"  # POST UploadBatch (and + services.common.api.KNOWN)

FEED_LIMIT, FEED_MAX = 10, 50
_RECOMMENDATIONS_HEAD = RECOMMENDATIONS.removesuffix("{user_id}")


def recommendations_path(user_id: str) -> str:
    """RECOMMENDATIONS for one user: by concatenation, on every feed (str.format costs ten times as much)."""
    return _RECOMMENDATIONS_HEAD + user_id


class Upload(BaseModel):
    """The creator is not in the body: it is the user the gateway verified (services/common/perimeter.py)."""

    title: str = Field(min_length=1, max_length=120)
    tags: list[Id] = Field(default=[], max_length=5)


class FeedItem(TypedDict, total=False):
    video_id: str
    title: str
    creator_id: str
    source: str  # personalized, cached, trending or generic
    views: int | None  # set by the gateway
    views_status: str  # set by the gateway: ok, stale or unavailable


class Feed(TypedDict):
    user_id: str
    items: list[FeedItem]


class CreatorVideos(TypedDict):
    creator_id: str
    video_ids: list[str]
