"""What every data center holds at the end of a run, read from the instances' SQLite files (RUN_DIR/data, or
the borrowed stack's: chaos/audit/evidence.py); no instance needs to be running. Every replica the topology
names must have left its database: one that did not is named, never skipped."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.audit.errors import EvidenceError
from chaos.topology import Topology
from services.common.names import GATEWAY


@dataclass
class ViewsState:
    instance: str
    dc: str
    stored: dict[str, float | None] = field(default_factory=dict)  # event_id -> stored_t (not the seed)
    video_of: dict[str, str] = field(default_factory=dict)  # event_id -> video_id (not the seed)
    by_video: Counter[str] = field(default_factory=Counter)  # video_id -> events beyond the seed
    # video_id -> views before the run: the seed, and on a borrowed stack what other runs wrote
    seeded: Counter[str] = field(default_factory=Counter)
    aggregate: dict[str, int] = field(default_factory=dict)  # video_id -> what reads answer (view_counts)
    rolled_back: list[dict[str, Any]] = field(default_factory=list)  # what an async rejoin discarded

    def count(self, video_id: str) -> int:
        """The video's views in this log beyond the seed (what the ledger accounts for)."""
        return self.by_video.get(video_id, 0)

    def total(self, video_id: str) -> int:
        return self.seeded.get(video_id, 0) + self.count(video_id)


@dataclass
class CatalogState:
    instance: str
    dc: str
    videos: dict[str, tuple[str, str]] = field(default_factory=dict)  # video_id -> (creator, title)
    stored: dict[str, float | None] = field(default_factory=dict)  # uploads only: video_id -> stored_t
    rolled_back: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunState:
    topology: Topology
    views: list[ViewsState]
    catalogs: list[CatalogState]
    users: dict[str, frozenset[tuple[str, str]]]  # auth instance -> its (user_id, role)s
    statements: dict[str, dict[str, tuple[int, float]]]  # earnings instance -> creator -> (views, computed_at)


def _connect(path: Path) -> sqlite3.Connection:
    # Not ``mode=ro``/``immutable``: a SIGKILLed instance leaves its last commits in the WAL, which
    # only a connection allowed to recover it reads. query_only: the audit never changes the data.
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only=1")
    return conn


Window = tuple[float, float] | None  # a borrowed stack's run: only events made within it are the run's


def _within(t: object, window: Window) -> bool:
    return window is None or (isinstance(t, (int, float)) and window[0] <= t <= window[1])


def _rollbacks(path: Path, window: Window) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if _within(r.get("t"), window)]


def read_views(path: Path, instance: str, dc: str, window: Window = None) -> ViewsState:
    state = ViewsState(instance, dc, rolled_back=_rollbacks(path.with_suffix(".rollback.jsonl"), window))
    with closing(_connect(path)) as conn:
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(events)")}
        stored = "stored_t" if "stored_t" in columns else "NULL"
        for row in conn.execute(f"SELECT event_id, video_id, origin, t, {stored} AS stored_t FROM events"):
            if row["origin"] == "seed" or not _within(row["t"], window):
                state.seeded[row["video_id"]] += 1
            else:
                state.stored[row["event_id"]] = row["stored_t"]
                state.video_of[row["event_id"]] = row["video_id"]
                state.by_video[row["video_id"]] += 1
        state.aggregate = {row[0]: row[1] for row in conn.execute("SELECT video_id, n FROM view_counts")}
    return state


def read_catalog(path: Path, instance: str, dc: str, window: Window = None) -> CatalogState:
    state = CatalogState(instance, dc, rolled_back=_rollbacks(path.with_suffix(".rollback.jsonl"), window))
    with closing(_connect(path)) as conn:
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(videos)")}
        extra = "origin, stored_t" if "origin" in columns else "'seed' AS origin, NULL AS stored_t"
        for row in conn.execute(f"SELECT video_id, creator_id, title, {extra} FROM videos"):
            state.videos[row["video_id"]] = (row["creator_id"], row["title"])
            if row["origin"] != "seed":
                state.stored[row["video_id"]] = row["stored_t"]
    return state


def read_run(topology: Topology, data: Path, window: Window = None) -> RunState:
    """Each views, recommender, auth and earnings instance of the topology, from ``data``/<name>.sqlite3;
    every one missing or unreadable is named (EvidenceError)."""
    views: list[ViewsState] = []
    catalogs: list[CatalogState] = []
    users: dict[str, frozenset[tuple[str, str]]] = {}
    statements: dict[str, dict[str, tuple[int, float]]] = {}
    problems: list[str] = []
    for name, (dc, inst) in sorted(topology.instances().items()):
        if inst.service == GATEWAY:
            continue  # keeps no data
        path = data / f"{name}.sqlite3"
        if not path.exists():  # every instance creates its database as it starts
            problems.append(f"{path} is missing: the {inst.service} replica {name} of {dc} cannot be checked")
            continue
        try:
            if inst.service == "views":
                views.append(read_views(path, name, dc, window))
            elif inst.service == "recommender":
                catalogs.append(read_catalog(path, name, dc, window))
            elif inst.service == "auth":
                with closing(_connect(path)) as conn:
                    users[name] = frozenset((r[0], r[1]) for r in conn.execute("SELECT user_id, role FROM users"))
            else:
                with closing(_connect(path)) as conn:
                    statements[name] = {
                        r[0]: (r[1], r[2])
                        for r in conn.execute("SELECT creator_id, views, computed_at FROM statements")
                    }
        except (sqlite3.Error, OSError, ValueError) as exc:  # ValueError: a rollback line that is not JSON
            problems.append(f"{path} (or its rollback file): cannot read: {exc}")
    if problems:
        raise EvidenceError(problems)
    return RunState(topology, views, catalogs, users, statements)
