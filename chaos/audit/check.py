"""The audit proper: the Jepsen counter check per video and data center, and what it reveals.

For every video and every data center, the views recorded beyond the seed must lie within
[acknowledged, acknowledged + unknown]: below, an acknowledged view was lost; above, something was
counted twice (or a write reported as failed was applied). Besides: acknowledged events missing by id,
how long the data centers' logs disagreed (from each event's ``stored_t`` in every log), uploads lost,
auth replicas that differ, and earnings statements that do not match the reconciled views. Loss is judged
against the design the run ran under (chaos/audit/design.py); missing evidence fails the audit instead
(chaos/audit/evidence.py).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos.audit.evidence import gather
from chaos.audit.ledger import UploadWrite, ViewWrite
from chaos.audit.state import CatalogState, RunState, ViewsState
from chaos.rundir import AUDIT_FILE


@dataclass
class DcViews:
    instance: str
    dc: str
    acked_present: int
    lost_acked: int  # acknowledged event ids missing here
    unknown_applied: int
    failed_applied: int  # written as failed (definitely not applied), yet here: a ledger that lied
    unexpected: int  # events no user of this run wrote
    below_range: int  # videos whose count < acknowledged (the counter check)
    below_unexplained: int  # ... < acknowledged minus what the design may lose (async: the rolled-back views)
    above_range: int  # videos whose count > acknowledged + unknown
    double_counted: int  # views beyond acked + unknown, plus reads (aggregates) above the log
    rolled_back: int  # views an async rejoin discarded here
    lost_examples: list[str] = field(default_factory=list)


@dataclass
class DcUploads:
    instance: str
    dc: str
    present: int
    lost_acked: int  # acknowledged uploads this catalog should hold and does not
    rolled_back: int


@dataclass
class Audit:
    run_dir: str
    stack_dir: str  # where the services' databases were read: the run's own, or the borrowed stack's
    design: str  # the weakest replication of the profiles used, or "single copy" (one views instance)
    profiles: list[str]  # the profiles the run ran under, in order
    promises_no_loss: bool
    writes: dict[str, int]
    uploads: dict[str, int]
    views: list[DcViews]
    uploads_by_dc: list[DcUploads]
    lost_acked_everywhere: int  # acknowledged views no data center has
    lost_everywhere_unrolled: int  # ... of which no rollback record allows the loss (async) or all (else)
    disagreed_s: float  # total time during which some event was in one log and not yet another
    longest_disagreement_s: float
    max_lag_s: float  # the longest any event took to reach every log
    disagree_at_end: int  # events not in every log when the run ended
    videos_differing_at_end: int
    users_equal: bool | None  # None: fewer than two auth replicas
    earnings_checked: int
    earnings_mismatched: int
    earnings_before_reconciliation: int
    reasons: list[str]

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def audit_run(run_dir: Path) -> Audit:
    """The audit of a finished run; EvidenceError (each missing file named) when it cannot be complete."""
    ev = gather(run_dir)
    state, writes, uploads = ev.state, ev.writes, ev.uploads
    end_t = ev.events[-1]["t"]
    allowed = _rolled_back_views(state) if not ev.design.promises_no_loss else set()
    views = [_dc_views(v, writes, allowed) for v in state.views]
    acked = [w for w in writes.values() if w.outcome == "acked"]
    gone = [w.event_id for w in acked if not any(w.event_id in v.stored for v in state.views)]
    spans, lag, at_end = _disagreement(state.views, end_t)
    disagreed, longest = _union(spans)
    finals = [{vid: v.total(vid) for vid in set(v.seeded) | set(v.video_of.values())} for v in state.views]
    differing = {vid for f in finals for vid in f if len({g.get(vid, 0) for g in finals}) > 1}
    held = set().union(*(c.videos for c in state.catalogs))
    catalogs = [
        _dc_uploads(c, uploads, held, bool(state.topology.instances()[c.instance][1].depends_on.get("recommender")))
        for c in state.catalogs
    ]
    checked, mismatched, early = _earnings(state, _converged_at(state))
    users = set(state.users.values())
    audit = Audit(
        run_dir=str(run_dir),
        stack_dir=str(ev.stack_dir),
        design=ev.design.name,
        profiles=list(ev.design.profiles),
        promises_no_loss=ev.design.promises_no_loss,
        writes=dict(Counter(w.outcome for w in writes.values())),
        uploads=dict(Counter(u.outcome for u in uploads)),
        views=views,
        uploads_by_dc=catalogs,
        lost_acked_everywhere=len(gone),
        lost_everywhere_unrolled=sum(1 for e in gone if e not in allowed),
        disagreed_s=round(disagreed, 3),
        longest_disagreement_s=round(longest, 3),
        max_lag_s=round(lag, 3),
        disagree_at_end=at_end,
        videos_differing_at_end=len(differing),
        users_equal=(len(users) == 1) if len(state.users) > 1 else None,
        earnings_checked=checked,
        earnings_mismatched=mismatched,
        earnings_before_reconciliation=early,
        reasons=[],
    )
    audit.reasons = verdict(audit)
    return audit


def verdict(audit: Audit) -> list[str]:
    """Why the run fails on data. Loss only where the design promised none, except that async may lose the
    in-flight views a rejoin rolled back and nothing else; double counts, earnings that do not match the
    views and auth replicas that differ always."""
    reasons = []
    lost = sum(v.lost_acked for v in audit.views)
    lost_uploads = sum(u.lost_acked for u in audit.uploads_by_dc)
    if audit.promises_no_loss and (lost or lost_uploads):
        reasons.append(
            f"data: the {audit.design} design promised no loss, yet {lost} acknowledged views and "
            f"{lost_uploads} acknowledged uploads are missing (audit.json)"
        )
    below = {v.instance: v.below_unexplained for v in audit.views if v.below_unexplained}
    if below:
        where = ", ".join(f"{n} in {name}" for name, n in below.items())
        allows = (
            "promises no loss"
            if audit.promises_no_loss
            else "may lose only the in-flight views a rejoin rolled back, and these are beyond them"
        )
        reasons.append(
            f"data: counter check: videos with fewer views than acknowledged ({where}); "
            f"the {audit.design} design {allows} (audit.json)"
        )
    if audit.lost_everywhere_unrolled:
        allowed = audit.lost_acked_everywhere - audit.lost_everywhere_unrolled
        reasons.append(
            f"data: {audit.lost_everywhere_unrolled} acknowledged views are gone from every data center"
            + (
                ""
                if audit.promises_no_loss
                else f" without a rollback record (the async design may lose only the in-flight views a rejoin "
                f"rolls back: {allowed} were, allowed)"
            )
            + " (audit.json)"
        )
    doubled = sum(v.double_counted for v in audit.views)
    if doubled:
        failed = sum(v.failed_applied for v in audit.views)
        reasons.append(
            f"data: {doubled} views counted beyond acknowledged + unknown (double counts"
            + (f"; {failed} were writes the ledger called failed" if failed else "")
            + "; audit.json)"
        )
    if audit.earnings_mismatched:
        reasons.append(
            f"data: {audit.earnings_mismatched} of {audit.earnings_checked} earnings statements made after "
            "reconciliation do not match the reconciled views (audit.json)"
        )
    if audit.users_equal is False:
        reasons.append("data: the auth replicas hold different users (audit.json)")
    return reasons


def _rolled_back_views(state: RunState) -> set[str]:
    """Event ids an async rejoin discarded, from every data center's rollback file."""
    return {str(r.get("event_id")) for v in state.views for r in v.rolled_back if r.get("kind") == "view"}


def _dc_views(v: ViewsState, writes: dict[str, ViewWrite], allowed: set[str]) -> DcViews:
    """``allowed``: acknowledged views the design may lose (the async design's rolled-back ones)."""
    acked_by_video: Counter[str] = Counter()
    allowed_by_video: Counter[str] = Counter()
    unknown_by_video: Counter[str] = Counter()
    lost: list[str] = []
    unknown_applied = failed_applied = acked_present = 0
    for w in writes.values():
        here = w.event_id in v.stored
        if w.outcome == "acked":
            acked_by_video[w.video_id] += 1
            allowed_by_video[w.video_id] += w.event_id in allowed
            acked_present += here
            if not here:
                lost.append(w.event_id)
        elif w.outcome == "unknown":
            unknown_by_video[w.video_id] += 1
            unknown_applied += here
        else:
            failed_applied += here
    unexpected = sum(1 for e in v.stored if e not in writes)
    below = unexplained = above = doubled = 0
    for vid in set(acked_by_video) | set(unknown_by_video) | set(v.video_of.values()):
        n = v.count(vid)
        if n < acked_by_video[vid]:
            below += 1
            unexplained += n < acked_by_video[vid] - allowed_by_video[vid]
        elif n > acked_by_video[vid] + unknown_by_video[vid]:
            above += 1
            doubled += n - acked_by_video[vid] - unknown_by_video[vid]
    # what reads answer must be the log's size: an aggregate above it counts a view twice
    doubled += sum(max(0, n - v.total(vid)) for vid, n in v.aggregate.items())
    rolled = sum(1 for r in v.rolled_back if r.get("kind") == "view")
    return DcViews(
        v.instance,
        v.dc,
        acked_present,
        len(lost),
        unknown_applied,
        failed_applied,
        unexpected,
        below,
        unexplained,
        above,
        doubled,
        rolled,
        lost[:5],
    )


def _dc_uploads(c: CatalogState, uploads: list[UploadWrite], held: set[str], replicated: bool) -> DcUploads:
    """A catalog that replicates must hold every acknowledged upload; one that does not (the fragile topology's)
    holds only those it took, which the ledger does not say: there, lost is what no catalog holds."""
    acked = [u for u in uploads if u.outcome == "acked" and u.video_id]
    lost = sum(1 for u in acked if u.video_id not in c.videos and (replicated or u.video_id not in held))
    rolled = sum(1 for r in c.rolled_back if r.get("kind") == "upload")
    return DcUploads(c.instance, c.dc, len(c.stored), lost, rolled)


def _disagreement(views: list[ViewsState], end_t: float) -> tuple[list[tuple[float, float]], float, int]:
    """Per event, the span from its first arrival in a log to its last (to the run's end when a log
    never got it); the longest complete span; how many events were still missing somewhere."""
    if len(views) < 2:
        return [], 0.0, 0
    spans: list[tuple[float, float]] = []
    lag = 0.0
    at_end = 0
    for event_id in set().union(*(v.stored for v in views)):
        times = [v.stored.get(event_id) for v in views]
        known = [t for t in times if t is not None]
        if not known:
            continue
        if any(event_id not in v.stored for v in views):
            at_end += 1
            spans.append((min(known), max(end_t, max(known))))
        elif len(known) == len(times):
            spans.append((min(known), max(known)))
            lag = max(lag, max(known) - min(known))
    return spans, lag, at_end


def _union(spans: list[tuple[float, float]]) -> tuple[float, float]:
    total = longest = 0.0
    current: list[float] | None = None
    for start, end in sorted(spans):
        if current is not None and start <= current[1]:
            current[1] = max(current[1], end)
            continue
        if current is not None:
            total += current[1] - current[0]
            longest = max(longest, current[1] - current[0])
        current = [start, end]
    if current is not None:
        total += current[1] - current[0]
        longest = max(longest, current[1] - current[0])
    return total, longest


def _converged_at(state: RunState) -> float:
    """The last moment any log or catalog changed: a statement computed after it saw the final views."""
    times = [t for v in state.views for t in v.stored.values() if t is not None]
    times += [t for c in state.catalogs for t in c.stored.values() if t is not None]
    return max(times, default=0.0)


def _earnings(state: RunState, converged_at: float) -> tuple[int, int, int]:
    """Statements computed after the logs converged must equal the views of the creator's videos."""
    by_name = {v.instance: v for v in state.views} | {c.instance: c for c in state.catalogs}
    checked = mismatched = early = 0
    for name, statements in state.statements.items():
        deps = state.topology.instances()[name][1].depends_on
        views = by_name.get((deps.get("views") or [""])[0])
        catalog = by_name.get((deps.get("recommender") or [""])[0])
        if not isinstance(views, ViewsState) or not isinstance(catalog, CatalogState):
            continue
        owned: dict[str, list[str]] = {}
        for vid, (creator, _) in catalog.videos.items():
            owned.setdefault(creator, []).append(vid)
        for creator, (n, computed_at) in statements.items():
            if computed_at <= converged_at:
                early += 1
                continue
            checked += 1
            mismatched += n != sum(views.total(vid) for vid in owned.get(creator, []))
    return checked, mismatched, early


def write_audit(audit: Audit, run_dir: Path) -> Path:
    path = run_dir / AUDIT_FILE
    path.write_text(json.dumps(audit.to_data(), indent=2))
    return path


def write_failed(reasons: list[str], run_dir: Path) -> Path:
    """The record of an audit that could not be done: its reasons, and no figures to be read as measured."""
    path = run_dir / AUDIT_FILE
    path.write_text(json.dumps({"run_dir": str(run_dir), "complete": False, "reasons": reasons}, indent=2))
    return path
