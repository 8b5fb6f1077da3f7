"""Blackout traffic: demo users hitting their home data center's gateway, recording what they saw.

Environment:
  BLACKOUT_GATEWAYS          required, "dc-east=http://127.0.0.1:8000,dc-west=http://127.0.0.1:9000"
  BLACKOUT_RUN_DIR           required, directory for requests.csv and writes.csv
  BLACKOUT_REQUEST_TIMEOUT_S optional client timeout in seconds (default 10)
  BLACKOUT_SEED              optional, seeds each user's action choices (default "blackout")
  BLACKOUT_LOAD_CONTROL      optional, a control file (loadtest.control) this run follows live: users,
                             spawn rate, edge failover, client attempts, think time, max run time
  BLACKOUT_EDGE_FAILOVER     "1": a global load balancer fails users over (when there is no control file)
  BLACKOUT_CLIENT_ATTEMPTS   the app's own tries per action (when there is no control file; default 1)
  BLACKOUT_WORKER_INDEX, BLACKOUT_WORKER_COUNT   this process's slot among locust workers (default 0 of 1)

User number n = local number * worker count + worker index (unique across workers) takes account
``services.common.accounts.account(n)`` and home gateway n % len(gateways).

Sessions are reused as real apps do: a user logs in once, keeps its token until it expires or is
refused (401), and opens a new session now and then (``NEW_SESSION_SHARE`` of its actions). A refused
login is retried after an exponential, jittered pause (or the server's Retry-After), never at once.

The HTTP client is locust's FastHttpUser (geventhttpclient): 0.68 ms of worker CPU per action against 1.62
for python-requests under HttpUser (docs/benchmarks.md, load_generator). Its timeouts are per session, not per
request, so a user holds two: ``self.client`` for plain tries (REQUEST_TIMEOUT_S) and, made on its first
edge try, ``self.edge_client`` (EDGE_TRY_TIMEOUT_S). Each bounds the connect and every socket read or
write, as requests' ``timeout=`` did; each keeps its connections alive between requests (loadtest/keepalive.py
keeps that true past 1,023 open files).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import gevent
from locust import events, task
from locust.contrib.fasthttp import FastHttpSession, FastHttpUser
from locust.runners import MasterRunner

from chaos.rundir import MASTER_FILE, REQUESTS_FILE, UPLOADS_FILE, WRITES_FILE
from loadtest import keepalive, records
from loadtest import metrics as user_metrics
from loadtest.control import CONTROL_ENV, DEMO_THINK_S, DRAIN_TTL_S, ControlWatcher
from loadtest.edge import EDGE_TRY_TIMEOUT_S, RETRYABLE, EdgeSettings
from services.common.accounts import MAX_USERS, account
from services.common.lifeline import watch_supervisor_from_env
from services.common.seed import DEMO_PASSWORD, N_VIDEOS, video_name
from services.gateway import api as gateway

watch_supervisor_from_env()  # started by `blackout outage`: stop when it dies
keepalive.install()  # else users whose connection's descriptor is above 1023 reconnect on every request
FEED_PAGE = f"{gateway.FEED}?limit={gateway.FEED_LIMIT}"  # what the app shows: a page of the default size
UPLOAD_TAGS = ("outage", "datacenter", "cats", "music", "howto", "live")

# action -> weight; feed dominates, watching follows a feed, creators also check earnings and upload.
VIEWER_WEIGHTS = {"feed": 6, "view": 4}
CREATOR_WEIGHTS = {"feed": 5, "view": 3, "earnings": 3, "upload": 1}
# Share of actions where the user opens the app anew and logs in again: logins keep happening all through
# a run, ~1 per 100 actions, as in real apps (not one per 10: a login costs ~55 ms of scrypt CPU).
NEW_SESSION_SHARE = 0.01
TOKEN_MARGIN_S = 5.0  # log in again this long before the token expires
# Capped low: after an outage users must come back within seconds of the service, as apps retrying do.
LOGIN_BACKOFF_BASE_S, LOGIN_BACKOFF_MAX_S = 0.5, 5.0
CONTROL_POLL_S = 0.25


def _fail(message: str) -> NoReturn:
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


def _worker_slot() -> tuple[int, int]:
    raw = (os.environ.get("BLACKOUT_WORKER_INDEX", "0"), os.environ.get("BLACKOUT_WORKER_COUNT", "1"))
    try:
        index, count = int(raw[0]), int(raw[1])
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        _fail(f"BLACKOUT_WORKER_INDEX/BLACKOUT_WORKER_COUNT must satisfy 0 <= index < count, got {raw}")
    return index, count


def _control_watcher() -> ControlWatcher | None:
    path = os.environ.get(CONTROL_ENV, "").strip()
    if not path:
        return None
    try:
        return ControlWatcher(Path(path))
    except ValueError as exc:
        _fail(f"{CONTROL_ENV}: {exc}")


GATEWAYS, RUN_DIR, REQUEST_TIMEOUT_S, SEED = _load_config()
WORKER_INDEX, WORKER_COUNT = _worker_slot()
CONTROL = _control_watcher()
if CONTROL is not None:
    from loadtest.shape import ControlledShape  # noqa: F401  locust finds the shape here and follows it


def _edge_from_env() -> EdgeSettings:
    raw = os.environ.get("BLACKOUT_CLIENT_ATTEMPTS", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 5:
        _fail(f"BLACKOUT_CLIENT_ATTEMPTS must be 1..5, got {raw!r}")
    return EdgeSettings(GATEWAYS, os.environ.get("BLACKOUT_EDGE_FAILOVER") == "1", int(raw))


LIVE = _edge_from_env()
if CONTROL is not None:
    LIVE.apply(CONTROL.control.edge_failover, CONTROL.control.client_attempts, CONTROL.control.drained)
try:
    REQUESTS: user_metrics.Recorder = records.CsvRecorder(RUN_DIR / REQUESTS_FILE, records.REQUEST_COLUMNS)
    WRITES = records.CsvRecorder(RUN_DIR / WRITES_FILE, records.WRITE_COLUMNS)
    UPLOADS = records.CsvRecorder(RUN_DIR / UPLOADS_FILE, records.UPLOAD_COLUMNS)
except (OSError, ValueError) as exc:
    _fail(f"cannot open the records in BLACKOUT_RUN_DIR={RUN_DIR}: {exc}")
REQUESTS = user_metrics.exporting(REQUESTS, RUN_DIR)  # what users saw, for Prometheus too
KNOWLEDGE = records.ViewKnowledge()  # shared by every user of this process
_user_numbers = itertools.count()


def _follow_control(watcher: ControlWatcher) -> None:
    while True:
        control = watcher.current()
        LIVE.apply(control.edge_failover, control.client_attempts, control.drained)
        gevent.sleep(CONTROL_POLL_S)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        # bound to port 0 by chaos.loadgen: tell it which port to give the workers (written whole, then renamed)
        tmp = RUN_DIR / f".{MASTER_FILE}.tmp"
        tmp.write_text(json.dumps({"port": environment.runner.server.port, "pid": os.getpid()}))
        os.replace(tmp, RUN_DIR / MASTER_FILE)
    elif CONTROL is not None:
        gevent.spawn(_follow_control, CONTROL)


@events.test_start.add_listener
def _start_edge(**_: Any) -> None:
    LIVE.start()


@events.quitting.add_listener
def _close_records(**_: Any) -> None:
    REQUESTS.close()
    WRITES.close()
    UPLOADS.close()


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (the delta form); 0 when absent or not a number (or sent twice:
    geventhttpclient gives a repeated header as a list)."""
    try:
        return min(max(float(value or 0), 0.0), LOGIN_BACKOFF_MAX_S)
    except (TypeError, ValueError):
        return 0.0


def _json(response: Any) -> Any:
    """The body as JSON (bytes straight to json.loads: no charset guessing); None when it is not JSON."""
    content = response.content
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return None


# Every status is an answer the user judges (resp.success()/failure()). geventhttpclient's default treats
# 4xx/5xx as errors: it builds a debug log of the exchange and releases the connection before the body is
# read (a body still in flight is cut short and its kept-alive connection closed).
EVERY_STATUS = frozenset(range(100, 600))


def _answer_every_status(session: FastHttpSession) -> FastHttpSession:
    # geventhttpclient declares it a class variable; set on the instance, it holds for this session alone
    session.client.valid_response_codes = EVERY_STATUS  # type: ignore[misc]
    return session


def _no_answer(response: Any) -> BaseException | None:
    """Why a try got no whole HTTP answer (None when it got one): no connection, a timeout before the
    status line, or one while the body was read (then the status is known but the body cut short;
    python-requests reported that as no answer too)."""
    return getattr(response, "error", None) or response.request_meta.get("exception")


def _error_text(error: BaseException | None, dc: str) -> str:
    # geventhttpclient wraps a timeout in RetriesExceeded(original=TimeoutError('timed out'))
    error = getattr(error, "original", None) or error
    return records.short_error(f"{type(error).__name__}: {error} ({dc})" if error else f"no response ({dc})")


class BlackoutUser(FastHttpUser):
    """One demo account; every request goes to its home data center's gateway."""

    host = GATEWAYS[0][1]  # locust wants one; every request uses an absolute URL anyway

    def wait_time(self) -> float:
        """The think time after an action: the control file's range, live (the demo's without one)."""
        lo, hi = CONTROL.control.think_s if CONTROL is not None else DEMO_THINK_S
        return random.uniform(lo, hi)

    # self.client, made by FastHttpUser: the plain tries (connect, and each socket read or write)
    network_timeout = connection_timeout = REQUEST_TIMEOUT_S
    max_retries = 0  # the app's retries are _call's, counted in its rows: the client itself never retries

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        _answer_every_status(self.client)
        self.edge_client: FastHttpSession | None = None  # the edge tries' session, made when first needed
        self.number = next(_user_numbers) * WORKER_COUNT + WORKER_INDEX
        if self.number >= MAX_USERS:
            sys.stderr.write(f"blackout locustfile: user {self.number} reuses account {self.number % MAX_USERS}\n")
        self.username, self.role = account(self.number % MAX_USERS)
        self.dc = GATEWAYS[self.number % len(GATEWAYS)][0]
        self.rng = random.Random(f"{SEED}:{self.number}")
        # how old this user's cached DNS answer is when a drain happens: its own source, so the action choices
        # of a seed stay the same with or without a drain
        self.resolver_age_s = random.Random(f"{SEED}:{self.number}:dns").uniform(0, DRAIN_TTL_S)
        self.token: str | None = None
        self.retry_after = 0.0  # the last 429/503's Retry-After
        self.token_expires_at = 0.0
        self.login_failures = 0
        self.next_login_at = 0.0  # monotonic; a refused login waits until then
        self.last_feed_ids: list[str] | None = None  # last successful feed (for "repeated feed")
        weights = CREATOR_WEIGHTS if self.role == "creator" else VIEWER_WEIGHTS
        self.actions, self.weights = list(weights), list(weights.values())

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _session(self, edge: bool) -> FastHttpSession:
        """The client for a try: EDGE_TRY_TIMEOUT_S behind the edge, else REQUEST_TIMEOUT_S (self.client)."""
        if not edge:
            return self.client
        if self.edge_client is None:  # as FastHttpUser makes self.client, with the edge's timeouts (own pool)
            self.edge_client = _answer_every_status(
                FastHttpSession(
                    base_url=self.host,
                    request_event=self.environment.events.request,
                    user=self,
                    network_timeout=EDGE_TRY_TIMEOUT_S,
                    connection_timeout=EDGE_TRY_TIMEOUT_S,
                    max_redirects=self.max_redirects,
                    max_retries=self.max_retries,
                    insecure=self.insecure,
                    concurrency=self.concurrency,
                    headers=self.default_headers,
                )
            )
        return self.edge_client

    def _call(
        self, action: str, method: str, path: str, check: Callable[[int, Any], tuple[bool, str, dict]], **kwargs: Any
    ) -> tuple[int, Any, float, float]:
        """Make one user request, judge it with ``check(status, body) -> (ok, error, extra columns)``, record a row.

        Requests safe to repeat are tried up to CLIENT_ATTEMPTS times on no answer or a 5xx (the app's own
        retries); with edge failover, once more, at another live data center, as a global load balancer would.
        Returns (status, body, t_start, t_done); status 0 means no HTTP answer (timeout, connection error).
        """
        t0 = time.time()
        p0 = time.perf_counter()
        retryable = action in RETRYABLE
        edge = LIVE.router if LIVE.failover else None
        tries = (LIVE.client_attempts + (1 if edge is not None else 0)) if retryable else 1
        attempts = calls = 0
        self.try_statuses: list[int] = []  # every try's status: a write's outcome depends on them all
        for try_number in range(1, tries + 1):
            home = LIVE.home(self.dc, self.resolver_age_s, time.time())  # a drained home: another data center
            avoid = frozenset(LIVE.drained)
            dc, base_url = edge.route(home, avoid) if edge is not None else (home, LIVE.router.gateways[home])
            self.try_sent_at = KNOWLEDGE.clock()  # what a feed is judged against: what was known when it was asked
            with self._session(edge is not None).request(
                method, base_url + path, name=action, catch_response=True, headers=self._headers(), **kwargs
            ) as resp:
                failed = _no_answer(resp)
                status = 0 if failed else int(resp.status_code or 0)
                self.try_statuses.append(status)
                attempts += records.parse_count_header(resp.headers.get("X-Blackout-Attempts") if status else None)
                calls += records.parse_count_header(resp.headers.get("X-Blackout-Calls") if status else None)
                if status == 0 and edge is not None:
                    edge.mark_down(dc)  # passive health check: the balancer stops sending users there
                if (status == 0 or status >= 500) and try_number < tries:
                    resp.failure(f"HTTP {status} from {dc}: tried again")
                    continue
                latency_ms = (time.perf_counter() - p0) * 1000.0
                t_done = time.time()
                body = _json(resp) if status else None
                if status == 0:
                    ok, extra = False, {}
                    error = _error_text(failed, dc)
                    if action == "earnings":
                        extra = {"earnings_missing": 1}
                else:
                    ok, error, extra = check(status, body)
                if status == 401 and action != "login":
                    self.token = None  # the session was refused: the user must log in again
                self.retry_after = _retry_after(resp.headers.get("Retry-After")) if status in (429, 503) else 0.0
                if ok:
                    resp.success()
                else:
                    resp.failure(error or f"HTTP {status}")
                REQUESTS.write(
                    records.request_row(
                        t=t0,
                        user=self.username,
                        dc=self.dc,
                        action=action,
                        ok=int(ok),
                        status=status,
                        latency_ms=round(latency_ms, 3),
                        tries=try_number,
                        attempts=attempts,
                        calls=calls,
                        error=error,
                        **extra,
                    )
                )
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
        if self.token is None or time.time() >= self.token_expires_at - TOKEN_MARGIN_S:
            if time.monotonic() >= self.next_login_at:
                self.login()
            return  # waiting out a refused login: the app shows its login screen
        if self.rng.random() < NEW_SESSION_SHARE:
            self.login()  # the user opens the app anew
            return
        action = self.rng.choices(self.actions, weights=self.weights)[0]
        if action == "view" and not self.last_feed_ids:
            action = "feed"  # nothing to watch yet
        getattr(self, action)()

    def login(self) -> None:
        status, body, _, _ = self._call(
            "login",
            "POST",
            gateway.LOGIN,
            self._judge(records.validate_login),
            json={"username": self.username, "password": DEMO_PASSWORD},
        )
        if 200 <= status < 300 and records.validate_login(body) is None:
            self.token, self.token_expires_at = body["token"], float(body["expires_at"])
            self.login_failures = 0
            return
        self.token = None
        self.login_failures += 1
        pause = self.rng.uniform(0, min(LOGIN_BACKOFF_MAX_S, LOGIN_BACKOFF_BASE_S * 2**self.login_failures))
        self.next_login_at = time.monotonic() + max(pause, self.retry_after)

    def feed(self) -> None:
        def check(status: int, body: Any) -> tuple[bool, str, dict]:
            ok, error, _ = self._judge(records.validate_feed)(status, body)
            if not ok:
                return ok, error, {}
            items = body["items"]
            ids = records.feed_video_ids(items)
            extra = {  # the recorded symptoms of services/common/symptoms.py a feed can show
                "zero_view_displays": KNOWLEDGE.zero_views(items, asked_at=self.try_sent_at),
                "stale_views": records.count_stale_views(items),
                "repeated_feeds": int(records.is_repeated_feed(self.last_feed_ids, ids)),
                "generic_feeds": int(records.is_generic_feed(items)),
            }
            self.last_feed_ids = ids
            return True, "", extra

        self._call("feed", "GET", FEED_PAGE, check)

    def view(self) -> None:
        video_id = self.rng.choice(self.last_feed_ids or [video_name(self.rng.randint(1, N_VIDEOS))])
        event_id = uuid.uuid4().hex
        # Written before sending (Jepsen's "invoke"): a user stopped mid-request (a load step down, the
        # end of the run) still leaves its write in the ledger, as pending, i.e. of unknown outcome.
        WRITES.write(
            {
                "event_id": event_id,
                "user": self.username,
                "dc": self.dc,
                "video_id": video_id,
                "t_sent": time.time(),
                "t_done": "",
                "outcome": "pending",
                "status": "",
            }
        )
        status, body, t_sent, t_done = self._call(
            "view",
            "POST",
            gateway.VIEW.format(video_id=video_id),
            self._judge(records.validate_view),
            json={"event_id": event_id},
        )
        outcome = records.classify_tries(self.try_statuses)
        if outcome == "acked" and isinstance(body, dict) and body.get("counted"):
            KNOWLEDGE.observe_ack(video_id)
        WRITES.write(
            {
                "event_id": event_id,
                "user": self.username,
                "dc": self.dc,
                "video_id": video_id,
                "t_sent": t_sent,
                "t_done": t_done,
                "outcome": outcome,
                "status": status,
            }
        )

    def earnings(self) -> None:
        def check(status: int, body: Any) -> tuple[bool, str, dict]:
            ok, error, _ = self._judge(records.validate_earnings)(status, body)
            missing = records.earnings_missing(ok, body)
            if ok and missing:
                error = "earnings_cents is null"
            return ok, error, {"earnings_missing": int(missing)}

        self._call("earnings", "GET", gateway.EARNINGS, check)

    def upload(self) -> None:
        title = f"{self.username} clip {self.rng.randint(1, 10**6)}"
        tags = self.rng.sample(UPLOAD_TAGS, 2)
        status, body, t_sent, t_done = self._call(
            "upload", "POST", gateway.UPLOAD, self._judge(records.validate_upload), json={"title": title, "tags": tags}
        )
        video_id = body.get("video_id", "") if isinstance(body, dict) and 200 <= status < 300 else ""
        UPLOADS.write(
            {
                "video_id": video_id,
                "title": title,
                "user": self.username,
                "dc": self.dc,
                "t_sent": t_sent,
                "t_done": t_done,
                "outcome": records.classify_tries(self.try_statuses),
                "status": status,
            }
        )
