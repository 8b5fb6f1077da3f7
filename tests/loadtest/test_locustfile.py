"""Run the real locustfile headless against a fake gateway on 127.0.0.1 and check the records."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes.gateway import FakeGatewayServer
from loadtest.records import REQUEST_COLUMNS, REQUESTS_FILE, WRITE_COLUMNS
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
        env.update({
            "BLACKOUT_GATEWAYS": f"dc-east={east.url},dc-west={west.url}",
            "BLACKOUT_RUN_DIR": str(run_dir),
            "BLACKOUT_REQUEST_TIMEOUT_S": "5",
            "BLACKOUT_SEED": "blackout",  # per-user action sequences are seeded: user 0 watches by its 2nd action
            "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
        })
        proc = subprocess.run(
            [str(LOCUST), "-f", "loadtest/locustfile.py", "--headless", "-u", "4", "-r", "4", "-t", "4s",
             "--only-summary"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=45,
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


def test_locustfile_fails_fast_without_gateways(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLACKOUT_")}
    env["BLACKOUT_RUN_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [str(LOCUST), "-f", "loadtest/locustfile.py", "--headless", "-u", "1", "-r", "1", "-t", "1s", "--only-summary"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0
    assert "BLACKOUT_GATEWAYS" in proc.stderr
