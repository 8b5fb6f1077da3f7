"""What the load generator was told: writes.csv (views) and uploads.csv, one row per write."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from chaos.audit.errors import EvidenceError
from chaos.rundir import UPLOADS_FILE, WRITES_FILE

OUTCOMES = ("acked", "failed", "unknown", "pending")  # pending: sent, then nothing (unknown)


@dataclass(frozen=True)
class ViewWrite:
    event_id: str
    video_id: str
    outcome: str  # acked | failed | unknown
    t_done: float


@dataclass(frozen=True)
class UploadWrite:
    video_id: str  # "" unless acknowledged (the recommender mints it)
    title: str
    creator: str
    outcome: str
    t_done: float


def _rows(path: Path, needed: tuple[str, ...]) -> list[dict[str, str]]:
    """The ledger's rows. The load generator creates the file as it starts, so a missing file is missing
    evidence (never zero writes)."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise EvidenceError([f"{path}: no column {', '.join(missing)}"])
            rows = list(reader)
    except FileNotFoundError:
        raise EvidenceError([f"{path} is missing: the ledger of what users were told (the load writes it)"]) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvidenceError([f"{path}: cannot read: {exc}"]) from None
    for n, row in enumerate(rows, start=2):
        if row["outcome"] not in OUTCOMES:
            raise EvidenceError([f"{path}:{n}: outcome {row['outcome']!r} is none of {', '.join(OUTCOMES)}"])
    return rows


def _t(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def view_writes(run_dir: Path) -> dict[str, ViewWrite]:
    """event_id -> its write: the outcome its user recorded when the call ended, over the "pending" row
    written before it was sent; a write whose user never recorded an end (stopped mid-call) is unknown."""
    rank = {"acked": 3, "unknown": 2, "failed": 1, "pending": 0}
    found: dict[str, ViewWrite] = {}
    for row in _rows(run_dir / WRITES_FILE, ("event_id", "video_id", "outcome", "t_done")):
        write = ViewWrite(row["event_id"], row["video_id"], row["outcome"], _t(row["t_done"]))
        old = found.get(write.event_id)
        if old is None or rank[write.outcome] > rank[old.outcome]:
            found[write.event_id] = write
    return {
        e: (w if w.outcome != "pending" else ViewWrite(w.event_id, w.video_id, "unknown", w.t_done))
        for e, w in found.items()
    }


def upload_writes(run_dir: Path) -> list[UploadWrite]:
    return [
        UploadWrite(row["video_id"], row["title"], row["user"], row["outcome"], _t(row["t_done"]))
        for row in _rows(run_dir / UPLOADS_FILE, ("video_id", "title", "user", "outcome", "t_done"))
    ]
