"""What every data center holds at the end of a run, read from the instances' SQLite files in
RUN_DIR/data (the run directory alone suffices: no instance needs to be running)."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from chaos.audit.errors import AuditError
from chaos.topology import Topology, load_topology
from services.common.errors import ConfigError


@dataclass
class ViewsState:
    instance: str
    dc: str
    stored: dict[str, float | None] = field(default_factory=dict)  # event_id -> stored_t (not the seed)
    video_of: dict[str, str] = field(default_factory=dict)  # event_id -> video_id (not the seed)
    by_video: Counter = field(default_factory=Counter)  # video_id -> events beyond the seed
    seeded: Counter = field(default_factory=Counter)  # video_id -> seeded views
    aggregate: dict[str, int] = field(default_factory=dict)  # video_id -> what reads answer (view_counts)
    rolled_back: list[dict] = field(default_factory=list)  # what an async rejoin discarded

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
    rolled_back: list[dict] = field(default_factory=list)


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


def _rollbacks(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_views(path: Path, instance: str, dc: str) -> ViewsState:
    state = ViewsState(instance, dc, rolled_back=_rollbacks(path.with_suffix(".rollback.jsonl")))
    with closing(_connect(path)) as conn:
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(events)")}
        stored = "stored_t" if "stored_t" in columns else "NULL"
        for row in conn.execute(f"SELECT event_id, video_id, origin, {stored} AS stored_t FROM events"):
            if row["origin"] == "seed":
                state.seeded[row["video_id"]] += 1
            else:
                state.stored[row["event_id"]] = row["stored_t"]
                state.video_of[row["event_id"]] = row["video_id"]
                state.by_video[row["video_id"]] += 1
        state.aggregate = {row[0]: row[1] for row in conn.execute("SELECT video_id, n FROM view_counts")}
    return state


def read_catalog(path: Path, instance: str, dc: str) -> CatalogState:
    state = CatalogState(instance, dc, rolled_back=_rollbacks(path.with_suffix(".rollback.jsonl")))
    with closing(_connect(path)) as conn:
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(videos)")}
        extra = "origin, stored_t" if "origin" in columns else "'seed' AS origin, NULL AS stored_t"
        for row in conn.execute(f"SELECT video_id, creator_id, title, {extra} FROM videos"):
            state.videos[row["video_id"]] = (row["creator_id"], row["title"])
            if row["origin"] != "seed":
                state.stored[row["video_id"]] = row["stored_t"]
    return state


def read_run(run_dir: Path) -> RunState:
    try:
        topology = load_topology(run_dir / "topology.yaml")
    except ConfigError as exc:
        raise AuditError(f"{run_dir} is not a finished run directory: {exc}") from None
    data = run_dir / "data"
    views: list[ViewsState] = []
    catalogs: list[CatalogState] = []
    users: dict[str, frozenset[tuple[str, str]]] = {}
    statements: dict[str, dict[str, tuple[int, float]]] = {}
    for name, (dc, inst) in sorted(topology.instances().items()):
        path = data / f"{name}.sqlite3"
        if not path.exists():
            continue  # never started (or a runtime that keeps no files here)
        if inst.service == "views":
            views.append(read_views(path, name, dc))
        elif inst.service == "recommender":
            catalogs.append(read_catalog(path, name, dc))
        elif inst.service == "auth":
            with closing(_connect(path)) as conn:
                users[name] = frozenset((r[0], r[1]) for r in conn.execute("SELECT user_id, role FROM users"))
        elif inst.service == "earnings":
            with closing(_connect(path)) as conn:
                statements[name] = {r[0]: (r[1], r[2]) for r in conn.execute(
                    "SELECT creator_id, views, computed_at FROM statements")}  # fmt: skip
    if not views:
        raise AuditError(f"{data}: no views instance's database: nothing to audit")
    return RunState(topology, views, catalogs, users, statements)
