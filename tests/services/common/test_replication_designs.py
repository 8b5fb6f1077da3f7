"""The two replication designs at the shipper: async rewinds a rejoining instance's unshipped tail to
what the (promoted) peer has; converge merges it. The same rules for the views log and the catalog."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx

from services.common.db import Database
from services.common.http import DependencyClient
from services.common.metrics import REPLICATION_LAG, REPLICATION_LAG_SECONDS
from services.common.policy import Profile, ProfileHolder
from services.common.replication import Shipper
from services.recommender.api import REPLICATION_VIDEOS
from services.recommender.catalog import SCHEMA as CATALOG_SCHEMA
from services.recommender.catalog import Catalog
from services.recommender.replica import CatalogReplica, ReplicatedUpload
from services.views.api import REPLICATION_EVENTS, ViewEvent
from services.views.app import SCHEMA, ViewLog

PEER = "http://peer.test"


class PromotedPeer:
    """A peer holding some ids already (shipped before the cursor was saved); records what it is sent."""

    def __init__(self, has: set[str]) -> None:
        self.has = set(has)
        self.asked: list[list[str]] = []
        self.received: list[str] = []
        self.up = True

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            return httpx.Response(503)
        body = json.loads(request.content)
        if request.url.path.endswith("/known"):
            self.asked.append(body["ids"])
            return httpx.Response(200, json={"known": [i for i in body["ids"] if i in self.has]})
        ids = [e.get("event_id") or e.get("video_id") for e in body["events"]]
        self.received += ids
        self.has |= set(ids)
        return httpx.Response(200, json={"applied": len(ids)})


def run_shipper(store, peer: PromotedPeer, design: str, path: str = REPLICATION_EVENTS, **kwargs) -> Shipper:
    """Run the shipper's loop until it has settled (rejoined and shipped everything), then stop it."""

    async def main() -> Shipper:
        async with httpx.AsyncClient(transport=httpx.MockTransport(peer.handle)) as http:
            client = DependencyClient("views", [PEER], ProfileHolder(Profile(name="test")), http)
            shipper = Shipper(
                store, {PEER: client}, "east", path=path, design=lambda: design, idle_s=0.01, retry_s=0.01, **kwargs
            )
            task = asyncio.create_task(shipper.run())
            for _ in range(500):  # settled: rejoined, and nothing waiting (a bounded number of polls)
                await asyncio.sleep(0.01)
                if PEER in shipper.rewound or design == "converge":
                    if (await asyncio.to_thread(store.unshipped, PEER, 1))[1] == 0:
                        break
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return shipper

    return asyncio.run(main())


def views_with_tail(tmp_path: Path) -> ViewLog:
    """A views log whose peer acknowledged e0 (the cursor), then got e1 without the cursor saying so."""
    log = ViewLog(Database(tmp_path / "views-east.sqlite3", SCHEMA))
    log.seed(42)
    for n in range(4):
        log.append(ViewEvent(event_id=f"e{n}", video_id="video-0001", user_id="u"))
    first = log.db.query("SELECT seq FROM events WHERE event_id = 'e0'")[0]["seq"]
    log.set_cursor(PEER, first)
    return log


def test_async_discards_on_rejoin_what_the_promoted_peer_never_got(tmp_path):
    log = views_with_tail(tmp_path)
    before = log.counts(["video-0001"])["video-0001"]
    peer = PromotedPeer(has={"e0", "e1"})
    shipper = run_shipper(log, peer, "async")
    assert shipper.rewound == {PEER: 2} and peer.asked == [["e1", "e2", "e3"]]
    assert log.known(["e0", "e1", "e2", "e3"]) == ["e0", "e1"]
    assert log.counts(["video-0001"])["video-0001"] == before - 2  # the aggregates follow the log
    discarded = [json.loads(line) for line in log.rollback_path.read_text().splitlines()]
    assert [d["event_id"] for d in discarded] == ["e2", "e3"] and "promoted" in discarded[0]["reason"]
    assert peer.received == ["e1"]  # kept e1 is shipped again (harmless: the peer ignores a duplicate)
    # every rejoin follows the peer: a view acknowledged and still unshipped at the next restart goes too
    log.append(ViewEvent(event_id="e4", video_id="video-0001", user_id="u"))
    assert run_shipper(log, peer, "async").rewound == {PEER: 1} and log.known(["e4"]) == []


def test_converge_keeps_and_ships_the_whole_tail(tmp_path):
    log = views_with_tail(tmp_path)
    peer = PromotedPeer(has={"e0", "e1"})
    shipper = run_shipper(log, peer, "converge")
    assert shipper.rewound == {} and peer.asked == []
    assert peer.received == ["e1", "e2", "e3"] and not log.rollback_path.exists()
    assert log.known(["e0", "e1", "e2", "e3"]) == ["e0", "e1", "e2", "e3"]


def test_async_waits_for_the_peer_before_shipping_anything(tmp_path):
    log = views_with_tail(tmp_path)
    peer = PromotedPeer(has=set())
    peer.up = False
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            peer.up = True
        await asyncio.sleep(0)

    shipper = run_shipper(log, peer, "async", sleep=fake_sleep)
    assert waits[:3] == [0.01, 0.01, 0.01]  # retried at retry_s while the peer was dark
    assert shipper.rewound == {PEER: 3} and peer.received == []  # nothing shipped before the rejoin settled


def test_uploads_replicate_by_the_same_rules(tmp_path):
    catalog = Catalog(Database(tmp_path / "recommender-east.sqlite3", CATALOG_SCHEMA), 42)
    replica = CatalogReplica(catalog)
    kept, lost = catalog.add("kept", "creator-001", []), catalog.add("lost", "creator-001", [])
    peer = PromotedPeer(has={kept.video_id})
    shipper = run_shipper(replica, peer, "async", path=REPLICATION_VIDEOS, time_field="created_at")
    assert shipper.rewound == {PEER: 1}
    assert kept.video_id in catalog.entries and lost.video_id not in catalog.entries
    assert lost.video_id not in {e.video_id for e in catalog.ordered}  # gone from the feed's sampling too
    assert json.loads(replica.db.path.with_suffix(".rollback.jsonl").read_text())["title"] == "lost"

    # received uploads join the catalog (disk and memory) once, whatever the resends
    upload = ReplicatedUpload(video_id="up-west1", title="t", creator_id="creator-002", tags=["a"], created_at=5.0)
    assert replica.apply([upload], "peer:west") == 1 and replica.apply([upload], "peer:west") == 0
    assert catalog.by_creator("creator-002").count("up-west1") == 1
    assert replica.unshipped(PEER, 10)[1] == 0  # received uploads are never shipped on
    reopened = Catalog(Database(tmp_path / "recommender-east.sqlite3", CATALOG_SCHEMA), 42)
    assert "up-west1" in reopened.entries and lost.video_id not in reopened.entries


def test_replication_lag_is_exported_in_records_and_seconds(tmp_path):
    log = views_with_tail(tmp_path)
    oldest = log.db.query("SELECT t FROM events WHERE event_id = 'e1'")[0]["t"]
    peer = PromotedPeer(has=set())
    peer.up = False

    async def main() -> tuple[float, float, float, float]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(peer.handle)) as http:
            client = DependencyClient("views", [PEER], ProfileHolder(Profile(name="test")), http)
            shipper = Shipper(log, {PEER: client}, "east", path=REPLICATION_EVENTS)
            await shipper.ship_to(PEER)  # fails: e1..e3 wait
            waiting = (REPLICATION_LAG.labels(PEER)._value.get(), REPLICATION_LAG_SECONDS.labels(PEER)._value.get())
            peer.up = True
            await shipper.ship_to(PEER)
            await shipper.ship_to(PEER)
            return (
                *waiting,
                REPLICATION_LAG.labels(PEER)._value.get(),
                REPLICATION_LAG_SECONDS.labels(PEER)._value.get(),
            )

    before = time.time()
    events, seconds, events_after, seconds_after = asyncio.run(main())
    assert events == 3 and seconds >= before - oldest and (events_after, seconds_after) == (0, 0)
