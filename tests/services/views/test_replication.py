"""Replication of the views log between data centers: the receiving route, the shipper, and two real
instances (one per data center) that catch up after a power loss."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import httpx
from fakes.processes import alive
from fakes.stack import client_for

from chaos.faults.actions import parse_action
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from chaos.runtime.local import LocalRuntime
from chaos.topology import parse_topology
from services.common.db import Database
from services.common.http import DependencyClient
from services.common.metrics import REPLICATION_LAG
from services.common.perimeter import SERVICE_KEY_HEADER
from services.common.policy import Profile, ProfileHolder
from services.common.replication import CLAIM_MAX_AGE_S, Inbound, Shipper
from services.views.api import REPLICATION_EVENTS, ReplicatedEvent, ViewEvent
from services.views.app import SCHEMA, ViewLog

PEER = "http://peer.test"
PROJECT = Path(__file__).resolve().parents[3]


def event(n: int, video: str = "video-0001") -> dict:
    return {"event_id": f"r{n}", "video_id": video, "user_id": "viewer-0001", "t": 1_800_000_000.0 + n}


# -- POST /replication/events -------------------------------------------------------------------------
def test_replicated_events_are_applied_once_and_keep_their_time(tmp_path):
    with client_for("views", tmp_path) as client:
        before = client.get("/videos/video-0001/views").json()["views"]
        batch = {"events": [event(1), event(2)], "source": "views-east"}
        assert client.post("/replication/events", json=batch).json() == {"applied": 2}
        # a batch resent (the cursor was not saved before a power loss) changes nothing
        assert client.post("/replication/events", json=batch).json() == {"applied": 0}
        assert client.post("/replication/events", json={"events": [event(2), event(3)]}).json() == {"applied": 1}
        assert client.get("/videos/video-0001/views").json()["views"] == before + 3
        # the same event_id arriving through POST /views is a retry, not a new view
        again = {k: v for k, v in event(1).items() if k != "t"}
        assert client.post("/views", json=again).json()["counted"] is False
        rows = client.app.state.log.db.query("SELECT t, origin FROM events WHERE event_id IN ('r1', 'r3') ORDER BY t")
        assert [(r["t"], r["origin"]) for r in rows] == [
            (1_800_000_001.0, "peer:views-east"),
            (1_800_000_003.0, "peer"),
        ]


def test_a_bad_replication_batch_is_refused_naming_the_field(tmp_path):
    with client_for("views", tmp_path) as client:
        bad_id = client.post("/replication/events", json={"events": [{**event(1), "video_id": "v/../x"}]})
        assert bad_id.status_code == 422
        assert bad_id.json()["detail"][0]["loc"] == ["body", "events", 0, "video_id"]
        assert client.post("/replication/events", json={"events": [{**event(1), "event_id": ""}]}).status_code == 422
        assert client.post("/replication/events", json={"events": [{**event(1), "t": -1}]}).status_code == 422
        no_time = {k: v for k, v in event(1).items() if k != "t"}
        assert client.post("/replication/events", json={"events": [no_time]}).status_code == 422
        too_many = client.post("/replication/events", json={"events": [event(n) for n in range(501)]})
        assert too_many.status_code == 422
        assert too_many.json()["detail"][0]["loc"] == ["body", "events"]
        assert client.post("/replication/events", json={"events": [event(1)], "source": "a b"}).status_code == 422
        assert client.post("/replication/events", json={"events": [event(n) for n in range(500)]}).json() == {
            "applied": 500
        }


def test_only_an_instance_with_a_views_dependency_replicates(tmp_path):
    with client_for("views", tmp_path / "alone") as client:
        assert client.app.state.replica is None
        assert client.app.state.ctx.background == []
    with client_for("views", tmp_path / "paired", deps={"views": [PEER + "/", "http://other.test"]}) as client:
        shipper = client.app.state.replica.shipper
        assert list(shipper.peers) == [PEER, "http://other.test"]  # one client per peer: each gets everything
        assert all(dep.urls == [peer] for peer, dep in shipper.peers.items())
        assert shipper.source == "views-test"


# -- the shipper ----------------------------------------------------------------------------------------
class Peer:
    """A fake replication peer (behind an httpx.MockTransport) recording every batch it accepts."""

    def __init__(self) -> None:
        self.up = True
        self.batches: list[dict] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            return httpx.Response(503)
        assert request.url.path == "/replication/events"
        body = json.loads(request.content)
        self.batches.append(body)
        return httpx.Response(200, json={"applied": len(body["events"])})

    def event_ids(self) -> list[str]:
        return [e["event_id"] for batch in self.batches for e in batch["events"]]


def open_log(tmp_path: Path) -> ViewLog:
    log = ViewLog(Database(tmp_path / "views.sqlite3", SCHEMA))
    log.seed(42)
    return log


def run_with_shipper(log: ViewLog, peer: Peer, steps, *, batch: int = 500):
    """Build a shipper to PEER over a MockTransport inside one event loop and run ``steps(shipper)``."""

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(peer.handle)) as http:
            client = DependencyClient("views", [PEER], ProfileHolder(Profile(name="test")), http)
            return await steps(Shipper(log, {PEER: client}, "views-east", path=REPLICATION_EVENTS, batch=batch))

    return asyncio.run(main())


def lag(peer: str = PEER) -> float:
    return REPLICATION_LAG.labels(peer)._value.get()


def test_the_shipper_ships_local_events_only_in_seq_order(tmp_path):
    log = open_log(tmp_path)
    log.append(ViewEvent(event_id="local-1", video_id="video-0001", user_id="u1"))
    log.apply([ReplicatedEvent(**event(1))], "peer:views-west")  # received: must not be shipped back
    log.append(ViewEvent(event_id="local-2", video_id="video-0002", user_id="u2"))
    peer = Peer()

    async def steps(shipper):
        return await shipper.ship_once(), await shipper.ship_once()

    first, second = run_with_shipper(log, peer, steps)

    assert first == {PEER: 2} and second == {PEER: 0}
    assert peer.event_ids() == ["local-1", "local-2"]  # no seed event, no received one, in seq order
    assert peer.batches[0]["source"] == "views-east"
    assert set(peer.batches[0]["events"][0]) == {"event_id", "video_id", "user_id", "t"}
    assert lag() == 0
    log.db.close()


def test_a_failing_peer_keeps_the_cursor_and_the_shipper_resumes_after(tmp_path):
    log = open_log(tmp_path)
    for n in range(5):
        log.append(ViewEvent(event_id=f"e{n}", video_id="video-0001", user_id="u"))
    peer = Peer()

    async def steps(shipper):
        results = [await shipper.ship_once()]  # e0, e1
        peer.up = False
        log.append(ViewEvent(event_id="e5", video_id="video-0001", user_id="u"))
        results.append(await shipper.ship_once())  # fails: nothing moves
        results += [lag(), set(shipper.unreachable)]  # and this log's counts miss what the peer took since
        peer.up = True
        results += [await shipper.ship_once() for _ in range(3)] + [set(shipper.unreachable)]
        return results

    results = run_with_shipper(log, peer, steps, batch=2)

    assert results == [{PEER: 2}, {PEER: None}, 4, {PEER}, {PEER: 2}, {PEER: 2}, {PEER: 0}, set()]
    assert peer.event_ids() == ["e0", "e1", "e2", "e3", "e4", "e5"]  # nothing lost, nothing twice
    assert [len(b["events"]) for b in peer.batches] == [2, 2, 2]
    assert lag() == 0
    log.db.close()


def test_a_restarted_instance_resumes_from_its_saved_cursor(tmp_path):
    log = open_log(tmp_path)
    log.append(ViewEvent(event_id="before", video_id="video-0001", user_id="u"))
    peer = Peer()

    async def ship(shipper):
        return await shipper.ship_once()

    assert run_with_shipper(log, peer, ship) == {PEER: 1}
    log.db.close()

    log = open_log(tmp_path)  # the same file, as after a power loss
    log.append(ViewEvent(event_id="after", video_id="video-0001", user_id="u"))
    assert run_with_shipper(log, peer, ship) == {PEER: 1}
    assert peer.event_ids() == ["before", "after"]
    log.db.close()


def test_the_shipper_loop_waits_between_failures_instead_of_spinning(tmp_path):
    log = open_log(tmp_path)
    log.append(ViewEvent(event_id="e", video_id="video-0001", user_id="u"))
    peer = Peer()
    peer.up = False
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            peer.up = True
        if len(waits) == 5:
            raise asyncio.CancelledError

    async def steps(shipper):
        shipper._sleep = fake_sleep
        try:
            await shipper.run()
        except asyncio.CancelledError:
            pass

    run_with_shipper(log, peer, steps)
    assert waits == [1.0, 1.0, 1.0, 0.2, 0.2]  # retry_s while failing, then idle_s once caught up
    assert peer.event_ids() == ["e"]
    log.db.close()


# -- two real instances, one per data center ------------------------------------------------------------
def count(client: httpx.Client, url: str, video: str) -> int | None:
    try:
        return client.get(f"{url}/videos/{video}/views", timeout=2.0).json()["views"]
    except httpx.HTTPError:
        return None


def wait_for_count(client: httpx.Client, url: str, video: str, expected: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = count(client, url, video)
        if seen == expected:
            return
        time.sleep(0.1)  # poll interval
    raise AssertionError(f"{url} shows {seen} views of {video}, expected {expected} within {timeout_s:g}s")


def views_pair():
    return parse_topology(
        {
            "name": "replicated-views",
            "data_centers": {
                "dc-east": {
                    "instances": {
                        "views-east": {"service": "views", "port": 0, "depends_on": {"views": ["views-west"]}},
                    }
                },
                "dc-west": {
                    "instances": {
                        "views-west": {"service": "views", "port": 0, "depends_on": {"views": ["views-east"]}},
                    }
                },
            },
        },
        "test",
    )


def test_two_data_centers_replicate_and_catch_up_after_a_power_loss(tmp_path):
    topology = views_pair()
    video = "video-0007"
    with (
        LocalRuntime(topology, tmp_path, profile=PROJECT / "profiles" / "resilient.yaml") as runtime,
        httpx.Client(timeout=5.0, headers={SERVICE_KEY_HEADER: runtime.service_key}) as client,
    ):
        east, west = runtime.topology.url("views-east"), runtime.topology.url("views-west")
        base = count(client, east, video)
        assert base is not None and base == count(client, west, video)  # the same seeded history
        assert client.post(east + "/views", json={"event_id": "x1", "video_id": video, "user_id": "u"}).json()[
            "counted"
        ]
        wait_for_count(client, west, video, base + 1)
        # west writes too, and east gets it: both directions, and nothing ping-pongs back as new
        assert client.post(west + "/views", json={"event_id": "w1", "video_id": video, "user_id": "u"}).json()[
            "counted"
        ]
        wait_for_count(client, east, video, base + 2)

        runtime.power_off("dc-west")
        for n in range(2, 6):
            client.post(east + "/views", json={"event_id": f"x{n}", "video_id": video, "user_id": "u"})
        assert count(client, east, video) == base + 6
        runtime.power_on("dc-west")

        wait_for_count(client, west, video, base + 6)
        assert count(client, east, video) == base + 6
    started = [pid for e in Journal(tmp_path).read() for pid in e.get("pids", {}).values()]
    assert started and not alive(started), "a process outlived the runtime"


# -- what "complete" vouches for ------------------------------------------------------------------------
def test_a_peer_vouches_only_by_saying_recently_that_nothing_waits():
    now, wall = [100.0], [1_000.0]
    inbound = Inbound(peers=1, fresh_s=5.0, clock=lambda: now[0], wall=lambda: wall[0])
    assert not inbound.caught_up()  # just started (a replica back from a power loss): nothing heard yet
    inbound.heard("peer:views-east", 3000, wall[0])
    assert not inbound.caught_up()  # a backlog (many batches) is still on its way
    inbound.heard("peer:views-east", None, wall[0])  # a sender that does not say proves nothing
    assert not inbound.caught_up()
    inbound.heard("peer:views-east", 0, None)  # nor one that does not say when it counted
    assert not inbound.caught_up()
    inbound.heard("peer:views-east", 0, wall[0])
    assert inbound.caught_up()
    inbound.heard("peer:views-east", 12, wall[0])  # steady writes: a few written since that batch left, due next
    assert inbound.caught_up()
    now[0] += 5.1
    assert not inbound.caught_up()  # silent for too long: it may be dark, taking views we do not see


def test_a_claim_counted_before_the_replica_started_or_held_up_on_its_way_proves_nothing():
    """The rejoin race seen under load: east counted "0 waiting" for a batch while west was dark, the POST
    got through once west was back, and west called 137 of 312 views complete."""
    wall = [1_000.0]
    inbound = Inbound(peers=1, wall=lambda: wall[0])
    inbound.heard("peer:views-east", 0, as_of=999.0)  # made before this replica started
    assert not inbound.caught_up()
    wall[0] += 10.0
    inbound.heard("peer:views-east", 0, as_of=wall[0] - CLAIM_MAX_AGE_S - 0.1)  # made after, but delivered late
    assert not inbound.caught_up()
    inbound.heard("peer:views-east", 0, as_of=wall[0] - 0.05)
    assert inbound.caught_up()


def test_an_idle_shipper_sends_heartbeats_saying_nothing_waits(tmp_path):
    began = time.time()
    log = open_log(tmp_path)
    peer = Peer()
    now = [0.0]

    async def steps(shipper):
        shipper.heartbeat_s, shipper._clock = 1.0, lambda: now[0]
        first = await shipper.ship_once()  # never heard from: a heartbeat at once
        second = await shipper.ship_once()  # within the second: nothing sent
        log.append(ViewEvent(event_id="e1", video_id="video-0001", user_id="u"))
        third = await shipper.ship_once()
        now[0] += 1.0
        return first, second, third, await shipper.ship_once()

    assert run_with_shipper(log, peer, steps) == ({PEER: 0}, {PEER: 0}, {PEER: 1}, {PEER: 0})
    assert [(len(b["events"]), b["waiting"]) for b in peer.batches] == [(0, 0), (1, 0), (0, 0)]
    assert all(began <= b["as_of"] <= time.time() for b in peer.batches), "each says when it counted"
    log.db.close()


def counts_at(client: httpx.Client, url: str, video: str) -> tuple[int, bool]:
    answer = client.post(url + "/views/counts", json={"video_ids": [video]}, timeout=5.0).json()
    return answer["counts"][video], answer["complete"]


def test_a_rejoining_replica_is_not_complete_before_it_caught_up(tmp_path):
    """West comes back from a power loss while east took views: until east's backlog reached it, west's
    counts are behind, and it must not call them complete (the outage's 0 views came from such answers)."""
    video, fresh = "video-0007", "video-9001"  # a seeded video; one with no views but the ones below
    with (
        LocalRuntime(views_pair(), tmp_path, profile=PROJECT / "profiles" / "resilient.yaml") as runtime,
        httpx.Client(timeout=5.0, headers={SERVICE_KEY_HEADER: runtime.service_key}) as client,
    ):
        east, west = runtime.topology.url("views-east"), runtime.topology.url("views-west")
        base, _ = counts_at(client, east, video)
        runtime.power_off("dc-west")
        for n in range(300):
            client.post(east + "/views", json={"event_id": f"dark-{n}", "video_id": video, "user_id": "u"})
        client.post(east + "/views", json={"event_id": "first", "video_id": fresh, "user_id": "u"})
        runtime.power_on("dc-west")  # returns once west is healthy: it answers reads from here on
        answers = []
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            seen, complete = counts_at(client, west, video)
            zero, zero_complete = counts_at(client, west, fresh)
            answers.append((seen, complete, zero, zero_complete))
            if complete and client.get(west + "/replication/status").json()["caught_up"]:
                break
        claimed = [a for a in answers if a[1] and a[0] != base + 300]
        assert not claimed, f"complete before catching up (views of {video} expected {base + 300}): {claimed[:3]}"
        assert not [a for a in answers if a[2] == 0 and a[3]], "a video with a view shown as 0, called complete"
        assert answers[-1] == (base + 300, True, 1, True), f"never caught up: last {answers[-1]}"
    assert not alive([pid for e in Journal(tmp_path).read() for pid in e.get("pids", {}).values()])


def test_a_lagging_replica_does_not_vouch_for_a_0_its_peer_contradicts(tmp_path):
    """East's shipments to west are slowed (as under load); a video's first views taken at east are not at
    west yet. West's 0 for it is not the truth: it answers east's count, or says it is not complete."""
    with (
        LocalRuntime(views_pair(), tmp_path, profile=PROJECT / "profiles" / "resilient.yaml") as runtime,
        httpx.Client(timeout=5.0, headers={SERVICE_KEY_HEADER: runtime.service_key}) as client,
    ):
        east, west = runtime.topology.url("views-east"), runtime.topology.url("views-west")
        wait_for_caught_up(client, west)
        injector = FaultInjector(runtime, Journal(tmp_path), random.Random(1))
        try:  # within the views timeout (300 ms): shipments get through, late
            injector.apply(parse_action({"latency": {"from": "dc-east", "to": "dc-west", "ms": 200}}, "test", "body"))
            answers = []
            for n in range(5):
                fresh = f"video-91{n:02d}"  # no views yet: its first ones come now, at east
                assert client.post(
                    east + "/views", json={"event_id": f"lag-{n}", "video_id": fresh, "user_id": "u"}
                ).json()["counted"]
                answers.append((fresh, *counts_at(client, west, fresh)))
        finally:
            injector.revert_all()
            injector.close()
        wrong = [a for a in answers if a[1] == 0 and a[2]]
        assert not wrong, f"west vouched for 0 views of videos east had counted: {wrong}"
        assert all(a[1] == 1 for a in answers if a[2]), answers
    assert not alive([pid for e in Journal(tmp_path).read() for pid in e.get("pids", {}).values()])


def wait_for_caught_up(client: httpx.Client, url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not client.get(url + "/replication/status").json()["caught_up"]:
        assert time.monotonic() < deadline, f"{url} never caught up with its peer"
        time.sleep(0.1)  # poll interval
