"""Run the real locustfile headless against a fake gateway on 127.0.0.1 and check the records."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fakes.gateway import FakeGatewayServer

from chaos.rundir import REQUESTS_FILE
from loadtest.records import REQUEST_COLUMNS, WRITE_COLUMNS
from loadtest.requests_reader import read_all

REPO = Path(__file__).resolve().parents[2]
LOCUST = Path(sys.executable).parent / "locust"


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.mark.timeout(60)
def test_locustfile_headless_against_fake_gateways(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    east, west = FakeGatewayServer("dc-east"), FakeGatewayServer("dc-west")
    try:
        east.start()
        west.start()
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(
            {
                "BLACKOUT_GATEWAYS": f"dc-east={east.url},dc-west={west.url}",
                "BLACKOUT_RUN_DIR": str(run_dir),
                "BLACKOUT_REQUEST_TIMEOUT_S": "5",
                "BLACKOUT_SEED": "blackout",  # per-user action sequences are seeded: user 0 watches by its 2nd action
                "NO_PROXY": "127.0.0.1",
                "no_proxy": "127.0.0.1",
            }
        )
        proc = subprocess.run(
            [
                str(LOCUST),
                "-f",
                "loadtest/locustfile.py",
                "--headless",
                "-u",
                "4",
                "-r",
                "4",
                "-t",
                "4s",
                "--only-summary",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=45,
        )
    finally:
        east.stop()
        west.stop()
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1 = some request failed, still a run

    header, _ = _rows(run_dir / REQUESTS_FILE)
    assert header == list(REQUEST_COLUMNS)
    requests_rows = read_all(run_dir / REQUESTS_FILE)
    assert requests_rows, proc.stderr[-3000:]
    actions = {r.action for r in requests_rows}
    assert {"login", "feed", "view"} <= actions, actions
    assert {r.dc for r in requests_rows} == {"dc-east", "dc-west"}
    assert len({r.user for r in requests_rows}) == 4
    ok_rows = [r for r in requests_rows if r.ok]
    assert ok_rows and all(200 <= r.status < 300 for r in ok_rows)
    assert all(r.attempts >= 1 and r.calls >= 1 for r in ok_rows)
    # the fake never fails: every row is a success
    assert all(r.ok for r in requests_rows), [r for r in requests_rows if not r.ok][:3]

    header, writes = _rows(run_dir / "writes.csv")
    assert header == list(WRITE_COLUMNS)
    acked = [w for w in writes if w["outcome"] == "acked"]
    assert acked
    # every write is logged as pending before it is sent, then once more with its outcome
    pending = {w["event_id"] for w in writes if w["outcome"] == "pending"}
    ended = [w for w in writes if w["outcome"] != "pending"]
    assert len({w["event_id"] for w in ended}) == len(ended) and {w["event_id"] for w in ended} <= pending
    served = set(east.state.events) | set(west.state.events)
    assert {w["event_id"] for w in acked} <= served
    assert all(float(w["t_done"]) >= float(w["t_sent"]) for w in ended)


@contextmanager
def silent_gateway(healthz: bool = False) -> Iterator[str]:
    """A gateway that takes connections and never answers a user (a stopped process, a blackholed host);
    with ``healthz`` its health checks still pass, so only users' own tries can tell the edge it is down."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []

    def hold(conn: socket.socket) -> None:
        with conn:
            try:
                request = conn.recv(4096)
                if healthz and request.startswith(b"GET /healthz "):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    return
                while conn.recv(4096):  # never answer: hold it until the client gives up and closes
                    pass
            except OSError:
                pass

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed: the test is over
            held.append(conn)
            threading.Thread(target=hold, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _locust(run_dir: Path, gateways: str, users: int, seconds: int, **env_extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("BLACKOUT_")}
    env.update(
        {
            "BLACKOUT_GATEWAYS": gateways,
            "BLACKOUT_RUN_DIR": str(run_dir),
            "BLACKOUT_SEED": "blackout",
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
            **env_extra,
        }
    )
    return subprocess.Popen(
        [
            str(LOCUST),
            "-f",
            "loadtest/locustfile.py",
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--only-summary",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=45)
    assert proc.returncode in (0, 1), err[-3000:]
    return err


@pytest.mark.timeout(60)
def test_a_try_at_a_silent_gateway_ends_at_the_request_timeout_with_status_0(tmp_path: Path) -> None:
    west = FakeGatewayServer("dc-west").start()
    try:
        with silent_gateway() as east:
            err = _finish(
                _locust(
                    tmp_path, f"dc-east={east},dc-west={west.url}", users=2, seconds=5, BLACKOUT_REQUEST_TIMEOUT_S="1"
                )
            )
    finally:
        west.stop()
    rows = read_all(tmp_path / REQUESTS_FILE)
    east_rows, west_rows = [r for r in rows if r.dc == "dc-east"], [r for r in rows if r.dc == "dc-west"]
    assert east_rows and west_rows, err[-3000:]
    for r in east_rows:  # user 0, at home: its logins time out, each after BLACKOUT_REQUEST_TIMEOUT_S
        assert (r.action, r.ok, r.status, r.tries) == ("login", False, 0, 1)
        assert 1000 <= r.latency_ms < 1800, r
        assert r.error == "TimeoutError: timed out (dc-east)"
    assert all(r.ok for r in west_rows)  # user 1 never noticed


@pytest.mark.timeout(60)
def test_edge_failover_leaves_a_silent_data_center_at_the_try_timeout_for_another(tmp_path: Path) -> None:
    west = FakeGatewayServer("dc-west").start()
    try:
        with silent_gateway(healthz=True) as east:  # the edge's health checks pass: only user tries find it out
            err = _finish(
                _locust(
                    tmp_path,
                    f"dc-east={east},dc-west={west.url}",
                    users=2,
                    seconds=5,
                    BLACKOUT_REQUEST_TIMEOUT_S="5",
                    BLACKOUT_EDGE_FAILOVER="1",
                )
            )
    finally:
        west.stop()
    rows = read_all(tmp_path / REQUESTS_FILE)
    east_rows = [r for r in rows if r.dc == "dc-east"]  # user 0's, a viewer: every action may be retried
    assert east_rows and {"login", "feed"} <= {r.action for r in east_rows}, err[-3000:]
    assert all(r.ok and r.status == 200 for r in east_rows), east_rows
    # Its first login finds dc-east up (no check failed): the first try waits EDGE_TRY_TIMEOUT_S (0.5 s, not the
    # 5-s request timeout), marks dc-east down, and the second goes to dc-west. The health checks bring dc-east
    # back within ~0.1 s, so later actions either do the same or (dc-east still down) go to dc-west at once.
    failed_over = [r for r in east_rows if r.tries == 2]
    assert failed_over and failed_over[0].action == "login" and failed_over[0].t == east_rows[0].t, east_rows
    assert all(500 <= r.latency_ms < 1300 for r in failed_over), failed_over
    assert all(r.tries == 1 and r.latency_ms < 500 for r in east_rows if r.tries != 2), east_rows
    assert all(r.ok and r.tries == 1 for r in rows if r.dc == "dc-west")
    acked = {w["event_id"] for w in _rows(tmp_path / "writes.csv")[1] if w["outcome"] == "acked"}
    assert acked <= west.state.events


@pytest.mark.timeout(60)
def test_a_refused_session_logs_in_again(tmp_path: Path) -> None:
    east = FakeGatewayServer("dc-east").start()
    try:
        proc = _locust(tmp_path, f"dc-east={east.url}", users=2, seconds=7)
        for _ in range(2):  # twice: a user that happens to open a new session just then is refused the next time
            time.sleep(2.0)
            with east.state.lock:
                east.state.tokens.clear()  # every session is refused from now on
        err = _finish(proc)
    finally:
        east.stop()
    rows = read_all(tmp_path / REQUESTS_FILE)
    assert len({r.user for r in rows}) == 2, err[-3000:]
    refused = 0
    for user in {r.user for r in rows}:
        mine = sorted((r for r in rows if r.user == user), key=lambda r: r.t)
        for n, r in enumerate(mine):
            if r.status == 401:
                refused += 1
                assert r.action != "login" and not r.ok and r.error == "HTTP 401", r
                # the user dropped the refused token: its very next action logs in again, and gets a new one
                assert mine[n + 1 :] and mine[n + 1].action == "login" and mine[n + 1].ok, mine[n:]
            else:
                assert r.ok, r
    assert refused >= 2, rows


def test_locustfile_fails_fast_without_gateways(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLACKOUT_")}
    env["BLACKOUT_RUN_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [str(LOCUST), "-f", "loadtest/locustfile.py", "--headless", "-u", "1", "-r", "1", "-t", "1s", "--only-summary"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "BLACKOUT_GATEWAYS" in proc.stderr
