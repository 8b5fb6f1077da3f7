"""The load generator under live control, and in locust's distributed mode: a real locust against fake gateways."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fakes.gateway import FakeGatewayServer
from fakes.processes import wait_all_gone

from chaos.loadgen import LoadGenerator
from chaos.rundir import REQUESTS_FILE
from chaos.runtime.base import RuntimeError_
from loadtest.control import LoadControl, read_control, write_control
from loadtest.requests_reader import RequestRow, RequestsReader
from services.common.errors import UsageError


@pytest.fixture
def gateways(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGatewayServer, FakeGatewayServer]]:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    east, west = FakeGatewayServer("dc-east"), FakeGatewayServer("dc-west")
    east.start()
    west.start()
    try:
        yield east, west
    finally:
        east.stop()
        west.stop()


def _wait_for(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)  # poll interval
    raise AssertionError(f"not within {timeout_s}s: {what}")


def _rows(run_dir: Path) -> list[RequestRow]:
    """Every row written so far (none before the file is)."""
    return RequestsReader(run_dir / REQUESTS_FILE).read_new()


def _users(run_dir: Path, since: float = 0.0) -> set[str]:
    return {r.user for r in _rows(run_dir) if r.t >= since}


def _pids(load: LoadGenerator) -> list[int]:
    return [p.pid for p in [load.proc, *load.worker_procs] if p is not None]


@pytest.mark.timeout(90)
def test_set_load_changes_users_and_edge_settings_of_a_running_locust(gateways, tmp_path: Path) -> None:
    east, west = gateways
    load = LoadGenerator(
        tmp_path, {"dc-east": east.url, "dc-west": west.url}, users=2, max_seconds=60, spawn_rate=10, workers=0
    )
    try:
        load.start()
        load.wait_logged_in(timeout_s=20)
        assert len(_users(tmp_path)) == 2

        load.set_load(users=6, spawn_rate=20)  # the shape follows the file
        _wait_for("6 users", lambda: len(_users(tmp_path)) == 6, 20)
        assert read_control(load.control_path).users == 6

        east.state.feed_status = 503  # dc-east's feeds fail; the app tries once (client_attempts 1)
        load.set_load(client_attempts=3)
        since = time.time() + 1.0  # the locust processes poll the file every 0.25 s
        _wait_for(
            "dc-east feeds tried 3 times",
            lambda: any(
                r.dc == "dc-east" and r.action == "feed" and r.tries == 3 and r.t >= since for r in _rows(tmp_path)
            ),
            20,
        )

        load.set_load(users=0)  # every user stops
        _wait_for("no requests", lambda: not [r for r in _rows(tmp_path) if r.finished >= time.time() - 1.5], 20)
    finally:
        load.stop()
    assert wait_all_gone(_pids(load), 10) == []


def _gaps(rows: list[RequestRow], since: float) -> list[float]:
    """Seconds from one action's start to the same user's next action's start (logins aside)."""
    by_user: dict[str, list[float]] = {}
    for row in rows:
        if row.action != "login" and row.t >= since:
            by_user.setdefault(row.user, []).append(row.t)
    ordered = [sorted(starts) for starts in by_user.values()]
    return [b - a for starts in ordered for a, b in pairwise(starts)]


@pytest.mark.timeout(90)
def test_users_think_as_long_as_the_control_says_live(gateways, tmp_path: Path) -> None:
    east, _ = gateways
    load = LoadGenerator(
        tmp_path, {"dc-east": east.url}, users=2, max_seconds=60, spawn_rate=10, workers=0, think_s=(2.0, 2.5)
    )
    try:
        load.start()
        load.wait_logged_in(timeout_s=20)
        _wait_for("two pauses of each user", lambda: len(_gaps(_rows(tmp_path), 0.0)) >= 4, 30)
        assert min(_gaps(_rows(tmp_path), 0.0)) >= 2.0  # the fake answers at once: the gap is the think time

        load.set_load(think_s=(0.0, 0.1))
        since = time.time() + 1.0  # each user finishes the pause it is in (<= 2.5 s) first
        _wait_for("quick actions", lambda: len([g for g in _gaps(_rows(tmp_path), since + 2.5) if g < 0.5]) >= 10, 20)
        assert read_control(load.control_path).think_s == (0.0, 0.1)
    finally:
        load.stop()
    assert wait_all_gone(_pids(load), 10) == []


@pytest.mark.timeout(90)
def test_distributed_mode_master_and_workers_share_the_records(gateways, tmp_path: Path) -> None:
    east, west = gateways
    load = LoadGenerator(
        tmp_path, {"dc-east": east.url, "dc-west": west.url}, users=8, max_seconds=60, spawn_rate=20, workers=2
    )
    try:
        load.start()
        assert len(load.worker_procs) == 2
        load.wait_logged_in(timeout_s=40)
        users = _users(tmp_path)
        assert len(users) == 8  # the workers' users take distinct accounts
    finally:
        load.stop()
    assert wait_all_gone(_pids(load), 10) == []
    rows = _rows(tmp_path)
    assert rows and all(r.ok for r in rows if r.action == "login")
    assert (tmp_path / "requests.csv").read_text().count("t,user,dc") == 1


@pytest.mark.timeout(60)
def test_the_shape_ends_the_run_at_its_max_time(gateways, tmp_path: Path) -> None:
    east, west = gateways
    load = LoadGenerator(tmp_path, {"dc-east": east.url}, users=1, max_seconds=3, workers=0)
    try:
        load.start()
        assert load.proc is not None
        load.proc.wait(timeout=30)  # no stop(): locust quits by itself
        assert load.proc.returncode in (0, 1)
        assert _users(tmp_path)
    finally:
        load.stop()


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    load = LoadGenerator(tmp_path, {"dc-east": "http://127.0.0.1:9"}, users=1, max_seconds=5, workers=0)
    with pytest.raises(UsageError, match="client_attempts"):
        load.set_load(client_attempts=9)
    with pytest.raises(UsageError, match="users"):
        load.set_load(users=-1)
    with pytest.raises(UsageError, match="think_s"):
        load.set_load(think_s=(3.0, 1.0))
    with pytest.raises(UsageError, match="users"):
        LoadGenerator(tmp_path, {"dc-east": "http://127.0.0.1:9"}, users=10**6, max_seconds=5)
    path = tmp_path / "c.json"
    write_control(path, LoadControl(users=3, spawn_rate=1.5, edge_failover=True, client_attempts=2))
    assert read_control(path) == LoadControl(users=3, spawn_rate=1.5, edge_failover=True, client_attempts=2)
    write_control(path, LoadControl(users=3, spawn_rate=1.5, think_s=(5, 15)))
    assert read_control(path).think_s == (5, 15)  # JSON's list back as the pair
    path.write_text('{"users": 3, "spawn_rate": 1, "think_s": [1, "x"]}')
    with pytest.raises(ValueError, match="think_s"):
        read_control(path)
    path.write_text('{"users": 3, "spawn_rate": 0, "speed": 1}')
    with pytest.raises(ValueError, match="speed"):
        read_control(path)
    not_a_time: dict[str, Any] = {"dc-east": "yesterday"}
    with pytest.raises(UsageError, match="drained"):
        load.set_load(drained=not_a_time)
    write_control(path, LoadControl(users=3, spawn_rate=1, drained={"dc-west": 1700000000.5}))
    assert read_control(path).drained == {"dc-west": 1700000000.5}


def test_ready_when_every_account_has_acted_although_creators_share_accounts(tmp_path: Path) -> None:
    from loadtest.records import REQUEST_COLUMNS, CsvRecorder, request_row
    from services.common.accounts import account

    load = LoadGenerator(tmp_path, {"dc-east": "http://127.0.0.1:9"}, users=300, max_seconds=5, workers=0)
    rec = CsvRecorder(tmp_path / "requests.csv", REQUEST_COLUMNS)
    for n in range(300):  # 300 users, 45 of them creators sharing the 30 creator accounts
        rec.write(request_row(t=1.0, user=account(n)[0], dc="dc-east", action="login", ok=1, status=200))
    rec.close()
    load.wait_logged_in(timeout_s=1)  # no locust: the records alone say every user started


def test_a_refused_login_is_not_ready(tmp_path: Path) -> None:
    from loadtest.records import REQUEST_COLUMNS, CsvRecorder, request_row
    from services.common.accounts import account

    refused = LoadGenerator(tmp_path / "none", {"dc-east": "http://127.0.0.1:9"}, users=2, max_seconds=5, workers=0)
    rec = CsvRecorder(tmp_path / "none" / "requests.csv", REQUEST_COLUMNS)
    rec.write(request_row(t=1.0, user=account(0)[0], dc="dc-east", action="login", ok=0, status=503))
    rec.close()
    with pytest.raises(RuntimeError_, match="none of the load generator's 2 accounts logged in"):
        refused.wait_logged_in(timeout_s=0.5)
    half = LoadGenerator(tmp_path / "half", {"dc-east": "http://127.0.0.1:9"}, users=2, max_seconds=5, workers=0)
    rec = CsvRecorder(tmp_path / "half" / "requests.csv", REQUEST_COLUMNS)
    rec.write(request_row(t=1.0, user=account(0)[0], dc="dc-east", action="login", ok=1, status=200))
    rec.write(request_row(t=1.0, user=account(1)[0], dc="dc-east", action="login", ok=0, status=503))
    rec.close()
    assert half.wait_logged_in(timeout_s=0.5) == (1, 2)  # waited the whole time for the refused one
