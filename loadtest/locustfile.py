"""Blackout traffic: demo users hitting their home data center's gateway, recording what they saw.

Environment:
  BLACKOUT_GATEWAYS          required, "dc-east=http://127.0.0.1:8000,dc-west=http://127.0.0.1:9000"
  BLACKOUT_RUN_DIR           required, directory for requests.csv and writes.csv
  BLACKOUT_REQUEST_TIMEOUT_S optional client timeout in seconds (default 10)
  BLACKOUT_SEED              optional, seeds each user's action choices (default "blackout")

User number i (in this process) takes demo account ``demo_accounts()[i]`` and home gateway i % len(gateways).
"""
from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from locust import HttpUser, between, events, task

from loadtest import records
from loadtest.edge import EdgeRouter
from services.common.lifeline import watch_supervisor_from_env
from services.common.seed import DEMO_PASSWORD

watch_supervisor_from_env()  # started by `blackout outage`: stop when it dies
CATALOG_SIZE = 400
UPLOAD_TAGS = ("outage", "datacenter", "cats", "music", "howto", "live")

# action -> weight; feed dominates, watching follows a feed, creators also check earnings and upload.
# "login": the user opens the app again (a new session), so logins keep happening all through the run.
VIEWER_WEIGHTS = {"feed": 6, "view": 4, "login": 1}
CREATOR_WEIGHTS = {"feed": 5, "view": 3, "earnings": 3, "upload": 1, "login": 1}


def _fail(message: str) -> None:
    sys.stderr.write(f"blackout locustfile: {message}\n")
    raise SystemExit(2)


def _load_config() -> tuple[list[tuple[str, str]], Path, float, str]:
    try:
        gateways = records.parse_gateways(os.environ.get("BLACKOUT_GATEWAYS"))
    except ValueError as exc:
        _fail(f"BLACKOUT_GATEWAYS {exc}")
    run_dir_s = os.environ.get("BLACKOUT_RUN_DIR", "").strip()
    if not run_dir_s:
        _fail("BLACKOUT_RUN_DIR is not set; it names the directory where requests.csv and writes.csv go")
    raw_timeout = os.environ.get("BLACKOUT_REQUEST_TIMEOUT_S", "10")
    try:
        timeout = float(raw_timeout)
        if not timeout > 0:
            raise ValueError
    except ValueError:
        _fail(f"BLACKOUT_REQUEST_TIMEOUT_S must be a positive number of seconds, got {raw_timeout!r}")
    return gateways, Path(run_dir_s), timeout, os.environ.get("BLACKOUT_SEED", "blackout")


GATEWAYS, RUN_DIR, REQUEST_TIMEOUT_S, SEED = _load_config()
# Edge failover (a global load balancer in front of the data centers), on when the profile asks for it.
EDGE = EdgeRouter(GATEWAYS) if os.environ.get("BLACKOUT_EDGE_FAILOVER") == "1" else None
EDGE_TRY_TIMEOUT_S = 0.5
# The app's own immediate retries on no answer or a 5xx (the profile's client_attempts).
CLIENT_ATTEMPTS = int(os.environ.get("BLACKOUT_CLIENT_ATTEMPTS", "1"))
# Safe to send twice: reads, logins, and view writes (idempotent by event_id). Uploads are not.
RETRYABLE = {"feed", "earnings", "login", "view"}
try:
    REQUESTS = records.CsvRecorder(RUN_DIR / "requests.csv", records.REQUEST_COLUMNS)
    WRITES = records.CsvRecorder(RUN_DIR / "writes.csv", records.WRITE_COLUMNS)
except (OSError, ValueError) as exc:
    _fail(f"cannot open the records in BLACKOUT_RUN_DIR={RUN_DIR}: {exc}")
ACCOUNTS = records.demo_accounts()
KNOWLEDGE = records.ViewKnowledge()  # shared by every user of this process
_user_numbers = itertools.count()


@events.test_start.add_listener
def _start_edge(**_: Any) -> None:
    if EDGE is not None:
        EDGE.start()


@events.quitting.add_listener
def _close_records(**_: Any) -> None:
    REQUESTS.close()
    WRITES.close()


def _json(response: Any) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


class BlackoutUser(HttpUser):
    """One demo account; every request goes to its home data center's gateway."""

    host = GATEWAYS[0][1]  # locust wants one; every request uses an absolute URL anyway
    wait_time = between(0.5, 1.5)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.number = next(_user_numbers)
        if self.number >= len(ACCOUNTS):
            sys.stderr.write(f"blackout locustfile: user {self.number} reuses account {self.number % len(ACCOUNTS)}\n")
        self.username, self.role = ACCOUNTS[self.number % len(ACCOUNTS)]
        self.dc, self.base_url = GATEWAYS[self.number % len(GATEWAYS)]
        self.rng = random.Random(f"{SEED}:{self.number}")
        self.token: str | None = None
        self.last_feed_ids: list[str] | None = None  # last successful feed (for "repeated feed")
        weights = CREATOR_WEIGHTS if self.role == "creator" else VIEWER_WEIGHTS
        self.actions, self.weights = list(weights), list(weights.values())

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _call(self, action: str, method: str, path: str, check: Callable[[int, Any], tuple[bool, str, dict]],
              **kwargs: Any) -> tuple[int, Any, float, float]:
        """Make one user request, judge it with ``check(status, body) -> (ok, error, extra columns)``, record a row.

        Requests safe to repeat are tried up to CLIENT_ATTEMPTS times on no answer or a 5xx (the app's own
        retries); with edge failover, once more, at another live data center, as a global load balancer would.
        Returns (status, body, t_start, t_done); status 0 means no HTTP answer (timeout, connection error).
        """
        t0 = time.time()
        p0 = time.perf_counter()
        retryable = action in RETRYABLE
        tries = (CLIENT_ATTEMPTS + (1 if EDGE is not None else 0)) if retryable else 1
        attempts = calls = 0
        for try_number in range(1, tries + 1):
            dc, base_url = EDGE.route(self.dc) if EDGE is not None else (self.dc, self.base_url)
            timeout = EDGE_TRY_TIMEOUT_S if EDGE is not None else REQUEST_TIMEOUT_S
            with self.client.request(method, base_url + path, name=action, timeout=timeout,
                                     catch_response=True, headers=self._headers(), **kwargs) as resp:
                status = int(resp.status_code or 0)
                attempts += records.parse_count_header(resp.headers.get("X-Blackout-Attempts") if status else None)
                calls += records.parse_count_header(resp.headers.get("X-Blackout-Calls") if status else None)
                if status == 0 and EDGE is not None:
                    EDGE.mark_down(dc)  # passive health check: the balancer stops sending users there
                if (status == 0 or status >= 500) and try_number < tries:
                    resp.failure(f"HTTP {status} from {dc}: tried again")
                    continue
                latency_ms = (time.perf_counter() - p0) * 1000.0
                t_done = time.time()
                body = _json(resp) if status else None
                if status == 0:
                    err = getattr(resp, "error", None)
                    ok, extra = False, {}
                    error = records.short_error(f"{type(err).__name__}: {err}" if err else "no response")
                    if action == "earnings":
                        extra = {"earnings_missing": 1}
                else:
                    ok, error, extra = check(status, body)
                if status == 401 and action != "login":
                    self.token = None  # the user must log in again
                if ok:
                    resp.success()
                else:
                    resp.failure(error or f"HTTP {status}")
                REQUESTS.write(records.request_row(
                    t=t0, user=self.username, dc=self.dc, action=action, ok=int(ok), status=status,
                    latency_ms=round(latency_ms, 3), tries=try_number, attempts=attempts, calls=calls, error=error,
                    **extra,
                ))
                return status, body, t0, t_done
        raise AssertionError("unreachable: the last try always records")  # pragma: no cover

    @staticmethod
    def _judge(validate: Callable[[Any], str | None]) -> Callable[[int, Any], tuple[bool, str, dict]]:
        def check(status: int, body: Any) -> tuple[bool, str, dict]:
            if not 200 <= status < 300:
                return False, f"HTTP {status}", {}
            reason = validate(body)
            return (reason is None), (f"malformed: {reason}" if reason else ""), {}
        return check

    # --- actions ------------------------------------------------------------------------------

    def on_start(self) -> None:
        self.login()

    @task
    def act(self) -> None:
        if self.token is None:
            self.login()
            return
        action = self.rng.choices(self.actions, weights=self.weights)[0]
        if action == "view" and not self.last_feed_ids:
            action = "feed"  # nothing to watch yet
        getattr(self, action)()

    def login(self) -> None:
        status, body, _, _ = self._call("login", "POST", "/login", self._judge(records.validate_login),
                                        json={"username": self.username, "password": DEMO_PASSWORD})
        if 200 <= status < 300 and records.validate_login(body) is None:
            self.token = body["token"]

    def feed(self) -> None:
        def check(status: int, body: Any) -> tuple[bool, str, dict]:
            ok, error, _ = self._judge(records.validate_feed)(status, body)
            if not ok:
                return ok, error, {}
            items = body["items"]
            ids = records.feed_video_ids(items)
            extra = {
                "zero_views": KNOWLEDGE.zero_views(items),
                "stale_views": records.count_stale_views(items),
                "repeated_feed": int(records.is_repeated_feed(self.last_feed_ids, ids)),
                "generic_feed": int(records.is_generic_feed(items)),
            }
            self.last_feed_ids = ids
            return True, "", extra
        self._call("feed", "GET", "/feed?limit=10", check)

    def view(self) -> None:
        video_id = self.rng.choice(self.last_feed_ids or [f"video-{self.rng.randint(1, CATALOG_SIZE):04d}"])
        event_id = uuid.uuid4().hex
        status, body, t_sent, t_done = self._call(
            "view", "POST", f"/videos/{video_id}/view", self._judge(records.validate_view), json={"event_id": event_id})
        outcome = records.classify_write(status)
        if outcome == "acked" and isinstance(body, dict) and body.get("counted"):
            KNOWLEDGE.observe_ack(video_id)
        WRITES.write({"event_id": event_id, "user": self.username, "dc": self.dc, "video_id": video_id,
                      "t_sent": t_sent, "t_done": t_done, "outcome": outcome, "status": status})

    def earnings(self) -> None:
        def check(status: int, body: Any) -> tuple[bool, str, dict]:
            ok, error, _ = self._judge(records.validate_earnings)(status, body)
            missing = records.earnings_missing(ok, body)
            if ok and missing:
                error = "earnings_cents is null"
            return ok, error, {"earnings_missing": int(missing)}
        self._call("earnings", "GET", "/me/earnings", check)

    def upload(self) -> None:
        title = f"{self.username} clip {self.rng.randint(1, 10**6)}"
        tags = self.rng.sample(UPLOAD_TAGS, 2)
        self._call("upload", "POST", "/videos", self._judge(records.validate_upload), json={"title": title, "tags": tags})
