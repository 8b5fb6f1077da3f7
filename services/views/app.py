"""views: the system of record for views, an append-only event log; every count is derived from it.

Replication (asynchronous log shipping between data centers). A views instance whose topology gives
it a ``views`` dependency treats those instances as its replication peers; without one nothing
changes. Every event carries its ``origin``: 'seed' (the seeded history, identical on every instance
because the seed is shared, so never shipped), 'local' (recorded here through POST /views) or
'peer:<instance>' (received through POST /replication/events). A background ``Shipper`` sends each
peer the *local* events in seq order, in batches of up to 500, and moves that peer's cursor
(``replication_cursors``) only after the peer acknowledged the batch: a restarted instance resumes
where it left off, and a batch shipped but not yet recorded as shipped (power lost in between) is
simply shipped again: the peer inserts with INSERT OR IGNORE by event_id. Received events are never
shipped on (no ping-pong), so peers must be a full mesh (every pair lists each other).

Each peer gets its own DependencyClient (named ``views``, with that peer's URL only): the profile's
``views`` policy (timeout, retries, breaker, retry budget) applies, with a breaker per peer; one
client over all the URLs would not do, since it fails over to *one* of them and each peer must
receive every event. The profile's ``replication`` picks the design (services/common/replication.py):
``async`` discards, when a data center rejoins, the acknowledged views it had not shipped before its
power went (``blackout_replication_lag_events``/``_seconds`` say how many, how old); ``converge``
merges the logs and loses nothing acknowledged. An event is acknowledged only once committed
(synchronous=FULL: on disk), so a SIGKILL right after the answer loses nothing. ``stored_t`` is when
an event reached *this* log: the audit (chaos/audit) measures from it how long data centers disagreed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response

from services.common.api import KNOWN, REPLICATION_STATUS
from services.common.app import build_context, create_service_app
from services.common.db import Database
from services.common.errors import ConflictError, DependencyError, DependencyRejected
from services.common.hot_routes import install as install_hot_routes
from services.common.http import DependencyClient
from services.common.ids import PathId
from services.common.perimeter import INTERNAL
from services.common.replication import (
    HEARTBEAT_S,
    Inbound,
    KnownRequest,
    Shipper,
    peer_clients,
    read_cursor,
    write_cursor,
    write_rollback,
)
from services.common.responses import json_response
from services.common.seed import seed_view_events
from services.common.settings import ServiceSettings
from services.views import aggregates, api, hot
from services.views.api import CountsRequest, Recorded, ReplicatedEvent, ReplicationBatch, ViewEvent

EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,  -- the user's idempotency key: unique per user, not across users
    video_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    t REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'local',  -- 'seed', 'local' or 'peer:<instance>': only 'local' is shipped
    stored_t REAL,  -- when it reached this log (NULL for the seed)
    UNIQUE (user_id, event_id)
);
"""
EVENTS_INDEXES = """
CREATE INDEX IF NOT EXISTS events_by_event_id ON events (event_id);
CREATE INDEX IF NOT EXISTS events_by_video ON events (video_id);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, seq);
CREATE INDEX IF NOT EXISTS events_by_origin ON events (origin, seq);
"""
LOG_SCHEMA = (
    EVENTS_TABLE
    + EVENTS_INDEXES
    + """
-- per replication peer (its URL): the seq of the last local event it acknowledged
CREATE TABLE IF NOT EXISTS replication_cursors (
    peer TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"""
)
SCHEMA = LOG_SCHEMA + aggregates.SCHEMA  # the log, and what its reads are served from
# How long a read may wait for the peers to confirm its 0s: a fraction of a caller's 300-ms timeout. Past
# it the 0s are answered as not complete (shown as unknown), never held up.
CONFIRM_S = 0.1


class ViewLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        if "stored_t" not in {row["name"] for row in db.query("PRAGMA table_info(events)")}:
            with db.transaction() as conn:  # a log made before the column existed
                conn.execute("ALTER TABLE events ADD COLUMN stored_t REAL")
        if _global_event_ids(db):
            with db.transaction() as conn:
                _scope_event_ids(conn)
        aggregates.ensure(db)  # before any insert: the trigger needs the aggregates' state

    def seed(self, seed: int) -> None:
        if self.db.query("SELECT 1 FROM events LIMIT 1"):
            return
        with self.db.transaction() as conn:
            aggregates.bulk_insert(
                conn,
                "INSERT INTO events (event_id, video_id, user_id, t, origin) VALUES (?, ?, ?, ?, 'seed')",
                seed_view_events(seed),
            )

    def append(self, event: ViewEvent) -> bool:
        """Record a view; returns once it is committed (on disk): only then may it be acknowledged.
        False: this user already recorded this event_id for this video (a retry). ConflictError: this user
        already used this event_id for another video (a key reused for different content)."""
        now = time.time()
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO events (event_id, video_id, user_id, t, origin, stored_t) "
                "VALUES (?, ?, ?, ?, 'local', ?)",
                (event.event_id, event.video_id, event.user_id, now, now),
            )
            if cur.rowcount == 1:
                return True
            row = conn.execute(
                "SELECT video_id FROM events WHERE user_id = ? AND event_id = ?", (event.user_id, event.event_id)
            ).fetchone()
        if row["video_id"] != event.video_id:
            raise ConflictError(f"event_id {event.event_id}", f"already recorded for video {row['video_id']}")
        return False

    # -- replication ------------------------------------------------------------------------------
    def apply(self, events: list[ReplicatedEvent], origin: str) -> int:
        """Insert events received from a peer (keeping their original time); how many were new."""
        with self.db.transaction() as conn:
            now = time.time()
            cur = conn.executemany(
                "INSERT OR IGNORE INTO events (event_id, video_id, user_id, t, origin, stored_t) VALUES (?, ?, ?, ?, ?, ?)",
                [(e.event_id, e.video_id, e.user_id, e.t, origin, now) for e in events],
            )
            return max(cur.rowcount, 0)

    def known(self, ids: list[str]) -> list[str]:
        """Which of these event ids this log holds (a rejoining peer asks, async design)."""
        if not ids:
            return []
        rows = self.db.query(f"SELECT event_id FROM events WHERE event_id IN ({','.join('?' * len(ids))})", ids)
        return [row["event_id"] for row in rows]

    def tail(self, peer: str) -> list[str]:
        rows = self.db.query(
            "SELECT event_id FROM events WHERE origin = 'local' AND seq > ? ORDER BY seq", (self.cursor(peer),)
        )
        return [row["event_id"] for row in rows]

    def discard(self, ids: list[str], reason: str) -> int:
        """Delete local events (the async design's rewind), keeping a durable record of each, then
        derive the aggregates again (the trigger only ever adds). The cursor stays: seqs never come back."""
        marks = ",".join("?" * len(ids))
        rows = self.db.query(f"SELECT event_id, video_id, user_id, t FROM events WHERE event_id IN ({marks})", ids)
        write_rollback(self.rollback_path, [{"kind": "view", **dict(row)} for row in rows], reason)
        with self.db.transaction() as conn:
            gone = conn.execute(f"DELETE FROM events WHERE origin = 'local' AND event_id IN ({marks})", ids).rowcount
            aggregates.rebuild(conn)
        return gone

    @property
    def rollback_path(self):  # beside the database: <instance>.rollback.jsonl
        return self.db.path.with_suffix(".rollback.jsonl")

    def cursor(self, peer: str) -> int:
        return read_cursor(self.db, peer)

    def set_cursor(self, peer: str, seq: int) -> None:
        write_cursor(self.db, peer, seq)

    def unshipped(self, peer: str, limit: int) -> tuple[list[tuple[int, dict]], int]:
        """The next ``limit`` local events past ``peer``'s cursor as (seq, event), and how many are waiting.

        Seqs become visible in order (one writer, each insert committed before the next begins), so
        an event committed later never gets a seq below the cursor and is never skipped."""
        after = self.cursor(peer)
        rows = self.db.query(
            "SELECT seq, event_id, video_id, user_id, t FROM events WHERE origin = 'local' AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (after, limit),
        )
        waiting = self.db.query("SELECT COUNT(*) AS n FROM events WHERE origin = 'local' AND seq > ?", (after,))
        fields = ("event_id", "video_id", "user_id", "t")
        batch = [(row["seq"], {name: row[name] for name in fields}) for row in rows]
        return batch, waiting[0]["n"]

    # Reads come from the aggregates (services/views/aggregates.py): O(result), whatever the log's size.
    def counts(self, video_ids: list[str]) -> dict[str, int]:
        return aggregates.counts(self.db, video_ids)

    def history(self, user_id: str, limit: int) -> list[str]:
        return aggregates.history(self.db, user_id, limit)

    def trending(self, limit: int) -> list[tuple[str, int]]:
        return aggregates.trending(self.db, limit)


def _global_event_ids(db: Database) -> bool:
    """True for a log made when event_id was unique across users (a UNIQUE index on it alone)."""
    for index in db.query("PRAGMA index_list(events)"):
        if index["unique"] and [c["name"] for c in db.query(f"PRAGMA index_info('{index['name']}')")] == ["event_id"]:
            return True
    return False


def _scope_event_ids(conn: sqlite3.Connection) -> None:
    """Rebuild such a log under EVENTS_TABLE (SQLite cannot drop a column's UNIQUE in place), keeping the
    seqs and the AUTOINCREMENT high mark (replication cursors point into them). Dropping the old table drops
    its trigger and indexes: they are made again; the aggregates, derived from the same rows, stay."""
    high = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    conn.execute(EVENTS_TABLE.replace("EXISTS events (", "EXISTS events_scoped ("))
    conn.execute(
        "INSERT INTO events_scoped (seq, event_id, video_id, user_id, t, origin, stored_t) "
        "SELECT seq, event_id, video_id, user_id, t, origin, stored_t FROM events"
    )
    conn.execute("DROP TABLE events")
    conn.execute("ALTER TABLE events_scoped RENAME TO events")
    if high is not None:
        conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'", (high[0],))
    for statement in (*EVENTS_INDEXES.split(";"), aggregates.TRIGGER):
        if statement.strip():
            conn.execute(statement)


class Replica:
    """What a replicated views instance can vouch for.

    Logs are shipped asynchronously, so this log always lags its peers a little, and a lot after a power
    loss (what the peers took while it was dark). A positive count that lags is still a true lower bound;
    a 0 is not: it may be a video whose first views are at a peer and not here yet, and showing those as
    0 views is the outage's symptom. So an answer is ``complete`` only when this instance reaches every
    peer, has caught up with every one (each said recently that nothing is waiting for it: ``Inbound``),
    and every 0 in it was confirmed by the peers' own logs; a 0 a peer contradicts is answered with the
    peer's count (exact: none of that video's views are here). Otherwise the answer says ``complete:
    false`` and the honest gateway shows its 0s as stale or unavailable, never as 0 views."""

    def __init__(self, shipper: Shipper, inbound: Inbound) -> None:
        self.shipper = shipper
        self.inbound = inbound

    async def vouch(self, counts: dict[str, int]) -> bool:
        """Whether ``counts`` is complete; its 0s are replaced by what the peers count (in place)."""
        if self.shipper.unreachable:
            return False  # a peer cut off: what it took is not here, and it cannot confirm anything
        zeros = [vid for vid, n in counts.items() if n == 0]
        confirmed = True
        for peer in self.shipper.peers.values() if zeros else ():
            confirmed = await self._confirm(peer, zeros, counts) and confirmed
        return confirmed and self.inbound.caught_up()

    async def _confirm(self, peer: DependencyClient, zeros: list[str], counts: dict[str, int]) -> bool:
        try:  # within CONFIRM_S: this answer must stay well inside its caller's timeout, or the caller's
            # breaker opens on views and takes the writes down with the reads (seen at 200 users)
            answer = await asyncio.wait_for(peer.post_json(api.REPLICATION_COUNTS, {"video_ids": zeros}), CONFIRM_S)
            theirs = answer["counts"]
            for vid in zeros:
                counts[vid] = max(counts[vid], int(theirs.get(vid, 0)))
        except (DependencyError, DependencyRejected, TimeoutError, KeyError, TypeError, ValueError, AttributeError):
            return False  # no answer in time, or not one this service gives: nothing confirmed
        return True


router = APIRouter(tags=["views"])


async def log(request: Request) -> ViewLog:  # async: a sync dependency would cost a thread hop per request
    return request.app.state.log


# Reads are async on purpose: each is a few index lookups on the reader connection, cheaper on the event
# loop than a hop to the thread pool. Writes stay sync (a thread): their commit waits for an fsync.
# The feed's three reads come first (FastAPI tries a router's routes in order, several us each) and
# take the log from app.state rather than through a dependency (one less level of FastAPI's solving).
@router.post(api.COUNTS)
async def batch_counts(body: CountsRequest, request: Request) -> Response:
    counts = request.app.state.log.counts(body.video_ids)
    replica: Replica | None = request.app.state.replica
    complete = True if replica is None else await replica.vouch(counts)
    answer: api.Counts = {"counts": counts, "complete": complete}
    return json_response(answer)


@router.get(api.HISTORY)
async def user_history(
    user_id: PathId, request: Request, limit: int = Query(api.HISTORY_LIMIT, ge=1, le=api.HISTORY_MAX)
) -> Response:
    return json_response({"user_id": user_id, "video_ids": request.app.state.log.history(user_id, limit)})


@router.get(api.TRENDING)
async def trending(request: Request, limit: int = Query(api.TRENDING_LIMIT, ge=1, le=api.TRENDING_MAX)) -> Response:
    top = request.app.state.log.trending(limit)
    return json_response({"videos": [{"video_id": vid, "views": n} for vid, n in top]})


@router.get(api.VIDEO_VIEWS)
async def video_views(video_id: PathId, views: ViewLog = Depends(log)) -> Response:
    return json_response({"video_id": video_id, "views": views.counts([video_id])[video_id]})


@router.post(api.RECORD, response_model=Recorded, dependencies=INTERNAL)
def record_view(event: ViewEvent, views: ViewLog = Depends(log)) -> Recorded:
    try:
        counted = views.append(event)
    except ConflictError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return Recorded(event_id=event.event_id, video_id=event.video_id, counted=counted)


@router.post(api.REPLICATION_EVENTS, tags=["replication"], dependencies=INTERNAL)
def receive_replicated(body: ReplicationBatch, request: Request, views: ViewLog = Depends(log)) -> dict:
    """Events shipped by a replication peer; idempotent (by event_id), so a batch may be resent."""
    origin = f"peer:{body.source}" if body.source else "peer"
    applied = views.apply(body.events, origin) if body.events else 0  # a heartbeat writes nothing
    if request.app.state.replica is not None:  # after the insert: "nothing waiting" must be true once said
        request.app.state.replica.inbound.heard(origin, body.waiting, body.as_of)
    return {"applied": applied}


@router.post(api.REPLICATION_COUNTS, tags=["replication"], dependencies=INTERNAL)
async def local_counts(body: CountsRequest, request: Request) -> Response:
    """Counts from this log alone (never asking its own peers: no ping-pong): what a peer checks its 0s with."""
    return json_response({"counts": request.app.state.log.counts(body.video_ids)})


@router.post(api.REPLICATION_EVENTS + KNOWN, tags=["replication"], dependencies=INTERNAL)
def known_events(body: KnownRequest, views: ViewLog = Depends(log)) -> dict:
    """Which of these event ids are here: a peer rejoining under the async design keeps only those."""
    return {"known": views.known(body.ids)}


@router.get(REPLICATION_STATUS, tags=["replication"])
def replication_status(request: Request) -> dict:
    """Per peer, local events it has not acknowledged yet (0 everywhere: this log is shipped)."""
    replica: Replica | None = request.app.state.replica
    if replica is None:
        return {"peers": {}, "rewound": {}, "caught_up": True}
    shipper = replica.shipper
    return {"peers": shipper.waiting(), "rewound": shipper.rewound, "caught_up": replica.inbound.caught_up()}


def create_app(settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    ctx = build_context(settings, transport)
    db = Database(settings.data_dir / f"{settings.instance}.sqlite3", SCHEMA)
    view_log = ViewLog(db)
    view_log.seed(settings.seed)
    ctx.closers.append(db.close)
    app = create_service_app(ctx, router)
    install_hot_routes(app, hot.routes(batch_counts, user_history, trending))
    app.state.log = view_log
    app.state.replica = None
    peers = settings.dependencies.get("views", [])
    if peers:
        design = lambda: ctx.profiles.current.replication  # noqa: E731 (read when the shipper starts)
        shipper = Shipper(
            view_log,
            peer_clients(peers, "views", ctx),
            settings.instance,
            path=api.REPLICATION_EVENTS,
            design=design,
            heartbeat_s=HEARTBEAT_S,
        )
        ctx.background.append(shipper.run)
        app.state.replica = Replica(shipper, Inbound(len(peers)))
    return app
