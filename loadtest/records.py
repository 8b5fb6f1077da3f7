"""What the simulated users saw: CSV records and symptom detection (plain Python, no locust/gevent).

Three CSV files live in the run directory, appended to by every locust process of the run:

* ``requests.csv`` -- one row per user request (``REQUEST_COLUMNS``: a column per recorded symptom of
  services/common/symptoms.py; loadtest/requests_reader.py reads it);
* ``writes.csv`` -- one row per view write, for a later Jepsen-style audit (``WRITE_COLUMNS``);
* ``uploads.csv`` -- one row per upload, for the same audit (``UPLOAD_COLUMNS``).

Rows are written whole as they happen (see ``CsvRecorder``), so a killed locust still leaves its record.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from services.common.symptoms import RECORDED

REQUEST_COLUMNS: tuple[str, ...] = (
    "t",
    "user",
    "dc",
    "action",
    "ok",
    "status",
    "latency_ms",
    "tries",
    "attempts",
    "calls",
    *RECORDED,
    "error",
)
WRITE_COLUMNS: tuple[str, ...] = (
    "event_id",
    "user",
    "dc",
    "video_id",
    "t_sent",
    "t_done",
    "outcome",
    "status",
)
# uploads.csv: one row per upload; video_id is known only when acknowledged (the recommender mints it),
# so an upload of unknown outcome is recognized in a catalog by its (creator, title).
UPLOAD_COLUMNS: tuple[str, ...] = (
    "video_id",
    "title",
    "user",
    "dc",
    "t_sent",
    "t_done",
    "outcome",
    "status",
)
ERROR_MAX_CHARS = 200

_STALE_STATUSES = frozenset({"stale", "unavailable"})


# --- configuration ---------------------------------------------------------------------------


def parse_gateways(spec: str | None) -> list[tuple[str, str]]:
    """Parse ``"dc-east=http://127.0.0.1:8000,dc-west=http://127.0.0.1:9000"`` into (dc, base URL) pairs.

    Raises ``ValueError`` with a readable reason when the value is missing or malformed.
    """
    if spec is None or not spec.strip():
        raise ValueError("is not set; expected e.g. 'dc-east=http://127.0.0.1:8000,dc-west=http://127.0.0.1:9000'")
    gateways: list[tuple[str, str]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        dc, sep, url = part.partition("=")
        dc, url = dc.strip(), url.strip().rstrip("/")
        if not sep or not dc or not url:
            raise ValueError(f"entry {part!r} is not of the form <dc>=<url>")
        if not (url.startswith("http://") or url.startswith("https://")):
            raise ValueError(f"entry {part!r}: the URL must start with http:// or https://")
        if any(dc == known for known, _ in gateways):
            raise ValueError(f"data center {dc!r} is listed twice")
        gateways.append((dc, url))
    if not gateways:
        raise ValueError("lists no gateway")
    return gateways


def parse_count_header(value: str | None) -> int:
    """An ``X-Blackout-Attempts`` / ``X-Blackout-Calls`` header as an int; missing or malformed -> 0."""
    if value is None:
        return 0
    try:
        n = int(str(value).strip())
    except ValueError:
        return 0
    return max(n, 0)


def classify_write(status: int) -> str:
    """Outcome of a view write, as a Jepsen-style audit needs it.

    acked: 2xx. failed: a definite rejection, the write was never applied (4xx; 503, which the gateway
    answers only when it did not send the write). unknown: no answer, or 502/504 after a downstream
    error or timeout: the write may or may not have been applied.
    """
    if 200 <= status < 300:
        return "acked"
    if 400 <= status < 500 or status == 503:
        return "failed"
    return "unknown"


def classify_tries(statuses: list[int]) -> str:
    """Outcome of a write tried several times (the app's retries, the edge's failover), same id each time.

    acked when the last try was; failed only when *every* try was definitely not applied; else unknown:
    a try that timed out may have been applied even though the next one was refused (a 503 after a
    timeout is not a failure: the audit found such "failed" views in the logs).
    """
    if not statuses:
        raise ValueError("a write has at least one try")
    if classify_write(statuses[-1]) == "acked":
        return "acked"
    return "failed" if all(classify_write(s) == "failed" for s in statuses) else "unknown"


def short_error(text: object) -> str:
    """One line, at most ``ERROR_MAX_CHARS`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= ERROR_MAX_CHARS else s[: ERROR_MAX_CHARS - 3] + "..."


# --- body validation: None when well formed, else a short reason -----------------------------


def _missing(body: Any, keys: Iterable[str]) -> str | None:
    if not isinstance(body, dict):
        return "body is not a JSON object"
    absent = [k for k in keys if k not in body]
    return f"missing {', '.join(absent)}" if absent else None


def validate_login(body: Any) -> str | None:
    reason = _missing(body, ("token", "user_id", "role", "expires_at"))
    if reason:
        return reason
    if not isinstance(body["token"], str) or not body["token"]:
        return "empty token"
    if body["role"] not in ("viewer", "creator"):
        return f"unknown role {body['role']!r}"
    return None


def validate_feed(body: Any) -> str | None:
    reason = _missing(body, ("user_id", "items"))
    if reason:
        return reason
    if not isinstance(body["items"], list):
        return "items is not a list"
    for n, item in enumerate(body["items"]):
        reason = _missing(item, ("video_id", "source", "views", "views_status"))
        if reason:
            return f"item {n}: {reason}"
        views = item["views"]
        if views is not None and (not isinstance(views, int) or isinstance(views, bool)):
            return f"item {n}: views is not an int or null"
    return None


def validate_view(body: Any) -> str | None:
    return _missing(body, ("event_id", "video_id", "counted"))


def validate_upload(body: Any) -> str | None:
    return _missing(body, ("video_id", "title", "creator_id"))


def validate_earnings(body: Any) -> str | None:
    return _missing(body, ("creator_id", "views", "earnings_cents", "status"))


# --- symptoms (pure) ---------------------------------------------------------------------------


def feed_video_ids(items: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(item.get("video_id")) for item in items]


def count_zero_views(items: Sequence[Mapping[str, Any]], known_positive: Mapping[str, int]) -> int:
    """Items displayed with ``views == 0`` although the video is known to have views (> 0 in ``known_positive``)."""
    return sum(
        1
        for item in items
        if item.get("views") == 0
        and not isinstance(item.get("views"), bool)
        and known_positive.get(str(item.get("video_id")), 0) > 0
    )


def count_stale_views(items: Sequence[Mapping[str, Any]]) -> int:
    """Items whose ``views_status`` is stale or unavailable."""
    return sum(1 for item in items if item.get("views_status") in _STALE_STATUSES)


def is_repeated_feed(previous_ids: Sequence[str] | None, current_ids: Sequence[str]) -> bool:
    """The feed shows exactly the same video list as this user's previous successful feed."""
    return previous_ids is not None and list(previous_ids) == list(current_ids)


def is_generic_feed(items: Sequence[Mapping[str, Any]]) -> bool:
    """Every item is the generic fallback (an empty feed is not counted as generic)."""
    return bool(items) and all(item.get("source") == "generic" for item in items)


def earnings_missing(ok: bool, body: Any) -> bool:
    """The earnings request failed, or it answered with ``earnings_cents: null`` ("earnings vanished")."""
    return not ok or not isinstance(body, dict) or body.get("earnings_cents") is None


class ViewKnowledge:
    """What this process knows about view counts: the max count seen with views_status ok,
    plus the number of views it had acknowledged (2xx with ``counted`` true) per video, and since when
    each video is known to have views (``clock``, monotonic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_seen_ok: dict[str, int] = {}
        self.acked: dict[str, int] = {}
        self.since: dict[str, float] = {}  # video -> when this process first knew it had views
        self.clock = clock

    def known(self, video_id: str) -> int:
        """A lower bound on the video's true view count."""
        return max(self.max_seen_ok.get(video_id, 0), self.acked.get(video_id, 0))

    def known_positive(self, items: Sequence[Mapping[str, Any]], before: float | None = None) -> dict[str, int]:
        """What is known of each item's video; with ``before``, only what was known by then."""
        return {
            vid: self.known(vid) if before is None or self.since.get(vid, before) < before else 0
            for vid in feed_video_ids(items)
        }

    def observe_feed(self, items: Sequence[Mapping[str, Any]]) -> None:
        for item in items:
            views = item.get("views")
            if item.get("views_status") == "ok" and isinstance(views, int) and not isinstance(views, bool):
                vid = str(item.get("video_id"))
                if views > self.max_seen_ok.get(vid, 0):
                    self.max_seen_ok[vid] = views
                    self.since.setdefault(vid, self.clock())

    def observe_ack(self, video_id: str) -> None:
        self.acked[video_id] = self.acked.get(video_id, 0) + 1
        self.since.setdefault(video_id, self.clock())

    def zero_views(self, items: Sequence[Mapping[str, Any]], asked_at: float | None = None) -> int:
        """Count zero-view displays against what was known *before* this feed was asked (``asked_at``, on
        ``clock``), then learn from it. A view acknowledged while the feed was on its way is concurrent
        with the feed's read: a correct store may answer either way, so it is not held against it."""
        n = count_zero_views(items, self.known_positive(items, asked_at))
        self.observe_feed(items)
        return n


# --- CSV writing -------------------------------------------------------------------------------


def _fmt(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value == value else ""
    return "" if value is None else value


class CsvRecorder:
    """Appends rows to a CSV file shared by several processes (locust's workers): header once, no torn rows.

    Each row is one ``write(2)`` on an ``O_APPEND`` descriptor: the kernel places it at the end of the
    file whole, so rows from concurrent writers never interleave, and it is on disk's page cache at once
    (a killed locust still leaves its record). The process that creates the file writes the header;
    others wait for it (``HEADER_WAIT_S``). A file whose header differs is refused (``ValueError``).
    """

    HEADER_WAIT_S = 5.0

    def __init__(self, path: Path | str, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        header = self._encode(list(self.columns))
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(self._fd, header)
        except FileExistsError:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            found = self._wait_for_header(len(header))
            if found != header:
                os.close(self._fd)
                raise ValueError(f"{self.path}: existing header {found!r} differs from {list(self.columns)}") from None

    def _wait_for_header(self, size: int) -> bytes:
        deadline = time.monotonic() + self.HEADER_WAIT_S
        while True:
            with open(self.path, "rb") as existing:
                first = existing.readline()
            if first.endswith(b"\n") or len(first) >= size or time.monotonic() > deadline:
                return first
            time.sleep(0.01)  # the creating process is between its open and its header write

    @staticmethod
    def _encode(values: list[Any]) -> bytes:
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow(values)
        return line.getvalue().encode("utf-8")

    def write(self, row: Mapping[str, Any]) -> None:
        missing = [c for c in self.columns if c not in row]
        if missing:
            raise ValueError(f"{self.path.name}: row lacks {missing}")
        extra = set(row) - set(self.columns)
        if extra:
            raise ValueError(f"{self.path.name}: unknown columns {sorted(extra)}")
        data = self._encode([_fmt(row[c]) for c in self.columns])
        with self._lock:
            if self._fd < 0:
                return  # locust is quitting: users still finishing a request after the records closed
            os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1


def request_row(**fields: Any) -> dict[str, Any]:
    """A ``requests.csv`` row with defaults (0 / empty) for every symptom column not given."""
    row: dict[str, Any] = {
        "ok": 0,
        "status": 0,
        "latency_ms": 0.0,
        "tries": 1,
        "attempts": 0,
        "calls": 0,
        **dict.fromkeys(RECORDED, 0),
        "error": "",
    }
    unknown = set(fields) - set(REQUEST_COLUMNS)
    if unknown:
        raise ValueError(f"unknown requests.csv columns {sorted(unknown)}")
    row.update(fields)
    row["error"] = short_error(row["error"]) if row["error"] else ""
    return row
