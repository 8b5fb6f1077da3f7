"""The views service's contract: its routes, limits and bodies, for views (services/views/app.py and its fast
path services/views/hot.py), its callers (the gateway, earnings, the recommender), the replication between
views replicas and the tests' fakes."""

from __future__ import annotations

from typing import TypedDict

from pydantic import BaseModel, Field

from services.common.ids import Id
from services.common.replication import BATCH

COUNTS = "/views/counts"  # POST CountsRequest -> Counts: the feed's batch read
HISTORY = "/users/{user_id}/history"  # GET ?limit= -> History
TRENDING = "/trending"  # GET ?limit= -> Trending
VIDEO_VIEWS = "/videos/{video_id}/views"
RECORD = "/views"  # POST ViewEvent -> Recorded (internal: the gateway's, with the service credential)
REPLICATION_EVENTS = "/replication/events"  # POST ReplicationBatch (and + services.common.api.KNOWN)
REPLICATION_COUNTS = "/replication/counts"  # POST CountsRequest -> Counts without "complete": this log alone

_HISTORY_HEAD, _, _HISTORY_TAIL = HISTORY.partition("{user_id}")


def history_path(user_id: str) -> str:
    """HISTORY for one user: by concatenation, on every feed (str.format costs ten times as much)."""
    return _HISTORY_HEAD + user_id + _HISTORY_TAIL


COUNTS_BATCH = 200  # the most video ids one counts request may carry: callers split longer lists
HISTORY_LIMIT, HISTORY_MAX = 50, 500
TRENDING_LIMIT, TRENDING_MAX = 20, 200


class ViewEvent(BaseModel):
    event_id: Id
    video_id: Id
    user_id: Id


class Recorded(BaseModel):
    event_id: str
    video_id: str
    counted: bool = Field(description="false when this event_id was already recorded (an idempotent retry)")


class ReplicatedEvent(BaseModel):
    event_id: Id
    video_id: Id
    user_id: Id
    t: float = Field(ge=0, allow_inf_nan=False, description="when the event was recorded at its origin")


class ReplicationBatch(BaseModel):
    events: list[ReplicatedEvent] = Field(max_length=BATCH)
    source: Id | None = Field(None, description="the sending instance (recorded as the events' origin)")
    waiting: int | None = Field(
        None,
        ge=0,
        description="events the sender still has for this instance after "
        "this batch (0: caught up); an empty batch with 0 is a heartbeat",
    )
    as_of: float | None = Field(None, description="when the sender counted `waiting` (its Unix time)")


class CountsRequest(BaseModel):
    video_ids: list[Id] = Field(min_length=1, max_length=COUNTS_BATCH)


# The answers of the feed's reads are TypedDicts, not models: the views service builds them by hand on its fast
# path (services/views/hot.py, docs/benchmarks.md), and a model's validation would cost every feed.
class Counts(TypedDict, total=False):
    counts: dict[str, int]  # always present
    complete: bool  # False: a replica that could not vouch for its 0s (see services/views/app.py Replica)


class History(TypedDict):
    user_id: str
    video_ids: list[str]


class TrendingVideo(TypedDict):
    video_id: str
    views: int


class Trending(TypedDict):
    videos: list[TrendingVideo]
