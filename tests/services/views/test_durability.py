"""Real views processes: an acknowledged view survives a SIGKILL right after its answer; retries of one
event count once however they race; two logs split by a partition converge once it heals."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml
from fakes.processes import alive

from chaos.faults.actions import parse_action
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from chaos.runtime.local import LocalRuntime
from chaos.topology import parse_topology
from services.common.perimeter import SERVICE_KEY_HEADER

PROJECT = Path(__file__).resolve().parents[3]
VIDEO = "video-0007"


def views_pair(replicate: bool = True):
    def views(other: str) -> dict:
        return {"service": "views", "port": 0, **({"depends_on": {"views": [other]}} if replicate else {})}

    return parse_topology(
        {
            "name": "views-pair",
            "data_centers": {
                "dc-east": {"instances": {"views-east": views("views-west")}},
                "dc-west": {"instances": {"views-west": views("views-east")}},
            },
        },
        "test",
    )


def converge_profile(tmp_path: Path) -> Path:
    data = yaml.safe_load((PROJECT / "profiles" / "resilient.yaml").read_text())
    path = tmp_path / "converge.yaml"
    path.write_text(yaml.safe_dump({**data, "replication": "converge"}))
    return path


def view(event_id: str) -> dict:
    return {"event_id": event_id, "video_id": VIDEO, "user_id": "viewer-0001"}


def event_ids(client: httpx.Client, url: str) -> int:
    return client.get(f"{url}/videos/{VIDEO}/views").json()["views"]


def started_pids(run_dir: Path) -> list[int]:
    return [pid for e in Journal(run_dir).read() for pid in e.get("pids", {}).values()]


def test_every_acknowledged_view_survives_a_sigkill_amid_writes(tmp_path):
    with (
        LocalRuntime(views_pair(replicate=False), tmp_path) as runtime,
        httpx.Client(timeout=5.0, headers={SERVICE_KEY_HEADER: runtime.service_key}) as client,
    ):
        east = runtime.topology.url("views-east")
        base = event_ids(client, east)
        acked: list[str] = []
        unknown: list[str] = []
        killed = threading.Event()

        def write(n: int) -> None:
            if killed.is_set():
                return  # after the cut nothing more is sent: what was in flight is what matters
            try:
                answer = client.post(east + "/views", json=view(f"k{n}"), timeout=1.0)
                (acked if answer.status_code == 200 and answer.json()["counted"] else unknown).append(f"k{n}")
            except httpx.HTTPError:
                unknown.append(f"k{n}")  # no answer: may or may not be recorded
            if len(acked) == 100 and not killed.is_set():
                killed.set()
                runtime.kill_instance("views-east")  # SIGKILL while other writes are in flight

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(400)))
        assert killed.is_set() and len(acked) >= 100
        runtime.start_instance("views-east")
        recorded = event_ids(client, east) - base
        assert len(acked) <= recorded <= len(acked) + len(unknown)  # the counter check
        for event_id in acked:  # each is there by id: a retry of any is recognized, not counted anew
            assert client.post(east + "/views", json=view(event_id)).json()["counted"] is False, event_id
        assert event_ids(client, east) - base == recorded
    assert not alive(started_pids(tmp_path)), "a process outlived the runtime"


def test_racing_retries_of_one_view_count_once_and_replicate_once(tmp_path):
    with (
        LocalRuntime(views_pair(), tmp_path, profile=converge_profile(tmp_path)) as runtime,
        httpx.Client(timeout=5.0, headers={SERVICE_KEY_HEADER: runtime.service_key}) as client,
    ):
        east, west = runtime.topology.url("views-east"), runtime.topology.url("views-west")
        base = event_ids(client, east)
        # a user's retries race each other, at both data centers (the edge failed over mid-write)
        targets = [east, west] * 20
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda url: client.post(url + "/views", json=view("same")), targets))
        assert all(a.status_code == 200 for a in answers)
        counted = sum(a.json()["counted"] for a in answers)
        assert 1 <= counted <= 2  # once per log at most: each log saw it first exactly once
        wait_until(lambda: event_ids(client, east) == event_ids(client, west) == base + 1, "one view everywhere")
    assert not alive(started_pids(tmp_path))


def wait_until(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g}s: {what}")
        time.sleep(0.1)  # poll interval


def complete(client: httpx.Client, url: str) -> bool:
    return client.post(url + "/views/counts", json={"video_ids": ["video-0001"]}).json()["complete"]


def shipping(client: httpx.Client, url: str) -> dict:
    return client.get(url + "/replication/status").json()


def test_logs_split_by_a_partition_merge_once_it_heals(tmp_path):
    with (
        LocalRuntime(views_pair(), tmp_path, profile=converge_profile(tmp_path)) as runtime,
        httpx.Client(timeout=5.0, headers={SERVICE_KEY_HEADER: runtime.service_key}) as client,
    ):
        east, west = runtime.topology.url("views-east"), runtime.topology.url("views-west")
        base = event_ids(client, east)
        injector = FaultInjector(runtime, Journal(tmp_path), random.Random(1))
        try:
            split, _ = injector.apply(parse_action({"partition": ["dc-east", "dc-west"]}, "test", "body"))
            for n in range(10):  # each side takes its own users' views, acknowledged locally
                assert client.post(east + "/views", json=view(f"east-{n}")).json()["counted"]
                assert client.post(west + "/views", json=view(f"west-{n}")).json()["counted"]
            both = client.post(east + "/views", json=view("both")).json()["counted"]
            both &= client.post(west + "/views", json=view("both")).json()["counted"]  # one view, on both sides
            assert both
            assert client.get(east + "/replication/status").json()["peers"] == {west: 11}  # nothing got across
            assert event_ids(client, east) == event_ids(client, west) == base + 11  # they disagree by content
            # each side knows its counts lack the other's views: a 0 there is not "no views" (the gateway's cue)
            wait_until(lambda: not complete(client, east) and not complete(client, west), "both sides cut off")
            injector.revert(split)
            wait_until(lambda: event_ids(client, east) == event_ids(client, west) == base + 21, "the merged set")
            # the peer has every event before the shipper records its acknowledgement: poll for the cursor
            wait_until(lambda: shipping(client, east)["peers"] == {west: 0}, "east's shipper caught up")
            assert shipping(client, east)["rewound"] == {}
            wait_until(lambda: complete(client, east) and complete(client, west), "both sides whole again")
        finally:
            injector.revert_all()
            injector.close()
    assert not alive(started_pids(tmp_path))
