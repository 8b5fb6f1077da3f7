"""Log shipping between data centers, shared by every replicated store (the views log, the catalog).

Each store keeps its records in seq order with an ``origin`` ('seed', 'local', 'peer:<instance>'), and a
durable cursor per peer: the seq of the last local record that peer acknowledged. A ``Shipper`` sends
each peer the local records past its cursor, in batches, and moves the cursor only after the peer
acknowledged (a batch resent after a power cut is harmless: peers insert by unique id, ignoring
duplicates). Received records are never shipped on, so peers form a full mesh.

Two designs, chosen by the profile's ``replication`` field (services/common/policy.py):

- ``async`` -- primary/replica log shipping with failover. When the other data center served writes
  while this one was dark (a failover promoted it), this instance's history diverged from it; on
  rejoining it follows the promoted side, as Redis, MongoDB (rollback) or a pg_rewind'ed PostgreSQL do:
  it asks the peer which of its unshipped records it has and *discards the rest* (written, with why,
  to ``<instance>.rollback.jsonl`` beside its database). That is the acknowledged-then-lost window
  the design allows: whatever was acknowledged here and not shipped when the power went.
- ``converge`` -- every data center accepts writes into its own durable log; records are unique by id;
  the logs are merged (each side ships its tail when it returns, nothing is discarded), so every
  count is the size of the merged set. An acknowledged record is lost only if its disk is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from pydantic import BaseModel, Field

from services.common.api import KNOWN
from services.common.app import ServiceContext
from services.common.db import Database
from services.common.errors import DependencyError, DependencyRejected
from services.common.http import DependencyClient
from services.common.ids import Id
from services.common.metrics import REPLICATION_LAG, REPLICATION_LAG_SECONDS

Design = Literal["async", "converge"]
BATCH = 500  # records per POST (also the most one POST may carry)


class KnownRequest(BaseModel):
    """A shipper asks a returning peer which of these records it already has (both logs use it)."""

    ids: list[Id] = Field(max_length=BATCH)


IDLE_S = 0.2  # how often an idle shipper looks for new records
RETRY_S = 1.0  # how long a shipper waits after a peer failed before trying it again
# A shipper with heartbeats (the views log) still tells an idle peer this often that nothing waits for it:
# without that word a receiver cannot tell "caught up" from "not heard from yet" (a replica just back).
HEARTBEAT_S = 1.0
# How long a peer's "nothing waits for you" counts: a few heartbeats, so one late heartbeat on a loaded
# machine does not flip a replica to incomplete, yet a peer gone dark stops vouching within seconds.
FRESH_S = 5.0
# How old a peer's "n are waiting for you" may be when it arrives. The count was read when the batch was made;
# a batch whose POST was held up (retried across a power loss or a partition) arrives with a count from before
# everything written since: seen as a rejoining replica called complete at 137 of 312 views. Older claims
# prove nothing; the next heartbeat (HEARTBEAT_S) brings a fresh one. Wall clock: every data center of this
# testbed shares one host's clock (local, netns, Docker, the Swarm lab).
CLAIM_MAX_AGE_S = 2.0
logger = logging.getLogger(__name__)


class Inbound:
    """What each peer last said it still had to ship here (the ``waiting`` of its last batch or heartbeat).

    A replica is caught up when every one of its ``peers`` said, within ``fresh_s``, that at most a batch
    was waiting. It is kept in memory on purpose: a replica that rejoins after a power loss has heard nothing
    yet, so it is not caught up until its peers have shipped it what they took while it was dark. A claim
    counts only if it was made (``as_of``, the sender's wall clock) after this replica started and at most
    ``CLAIM_MAX_AGE_S`` ago: a batch made while this replica was dark and delivered once it was back says
    nothing of what the peer took in between."""

    def __init__(
        self,
        peers: int,
        fresh_s: float = FRESH_S,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.peers = peers
        self.fresh_s = fresh_s
        self._clock = clock
        self._wall = wall
        self.started = wall()
        self._said: dict[str, tuple[float, int]] = {}  # source -> (when, waiting after that batch)

    def heard(self, source: str, waiting: int | None, as_of: float | None) -> None:
        if waiting is None or as_of is None:  # a sender that does not say how much, or when, proves nothing
            return
        if as_of < self.started or self._wall() - as_of > CLAIM_MAX_AGE_S:
            return  # counted before this replica started, or held up on its way: stale
        self._said[source] = (self._clock(), waiting)

    def caught_up(self) -> bool:
        """Every peer said recently that less than a batch waits for this replica: under steady writes a
        few always wait (written since the batch left), and they come with the next batch; a backlog from
        a power loss is many batches."""
        now = self._clock()
        vouching = sum(1 for t, waiting in self._said.values() if waiting < BATCH and now - t <= self.fresh_s)
        return vouching >= self.peers


class ReplicatedStore(Protocol):
    """What a Shipper needs from a store (services.views.app.ViewLog, services.recommender.replica)."""

    def unshipped(self, peer: str, limit: int) -> tuple[list[tuple[int, dict[str, Any]]], int]: ...
    def set_cursor(self, peer: str, seq: int) -> None: ...


class RewindableStore(ReplicatedStore, Protocol):
    def tail(self, peer: str) -> list[str]: ...  # ids of the local records past the peer's cursor
    def discard(self, ids: list[str], reason: str) -> int: ...  # delete them; how many were


class Shipper:
    """Ships local records to every peer, each on its own cursor and its own loop.

    ``ship_to(peer)`` is one step (one batch at most); ``ship_once()`` one step for every peer (what
    tests drive); ``run()`` first rewinds when the design is ``async`` (see the module), then loops
    forever: at once while a peer has a backlog, every ``idle_s`` when caught up, every ``retry_s``
    while it fails (its cursor then stays where it was)."""

    def __init__(
        self,
        log: ReplicatedStore,
        peers: dict[str, DependencyClient],
        source: str,
        *,
        path: str,
        time_field: str = "t",
        design: Callable[[], str] = lambda: "converge",
        batch: int = BATCH,
        idle_s: float = IDLE_S,
        retry_s: float = RETRY_S,
        heartbeat_s: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.peers = peers  # peer URL -> a client for that peer only
        self.source = source
        self.path = path
        self.time_field = time_field
        self.design = design
        self.batch = min(batch, BATCH)
        self.idle_s = idle_s
        self.retry_s = retry_s
        self.heartbeat_s = heartbeat_s  # None: an idle peer hears nothing (it does not track catch-up)
        self._sleep = sleep
        self._clock = clock
        self._last_sent: dict[str, float] = {}  # peer -> when it last acknowledged a batch or heartbeat
        self.rewound: dict[str, int] = {}  # peer -> records discarded when rejoining it (async)
        # Peers whose last shipment failed (and is still waiting: a failed batch stays unshipped, so the next
        # try tells). Every data center takes writes, so what such a peer took since is not here either: this
        # instance's counts are a lower bound (a 0 may be views it cannot see), not the truth.
        self.unreachable: set[str] = set()

    async def ship_to(self, peer: str) -> int | None:
        """Ship the next batch to ``peer``: how many records it acknowledged, None when it failed."""
        as_of = time.time()  # before the read: the count is true as of no earlier than this
        batch, waiting = await asyncio.to_thread(self.log.unshipped, peer, self.batch)
        lag, lag_s = REPLICATION_LAG.labels(peer), REPLICATION_LAG_SECONDS.labels(peer)
        lag.set(waiting)
        lag_s.set(max(0.0, time.time() - batch[0][1][self.time_field]) if batch else 0.0)
        if not batch and not self._heartbeat_due(peer):
            return 0
        # "waiting": what is left for the peer after this batch; 0 tells it it has everything sent so far
        body = {
            "events": [record for _, record in batch],
            "source": self.source,
            "waiting": waiting - len(batch),
            "as_of": as_of,
        }
        try:
            await self.peers[peer].post_json(self.path, body)
        except (DependencyError, DependencyRejected) as exc:
            self.unreachable.add(peer)
            logger.warning("replication to %s failed (%d waiting): %s", peer, waiting, exc)
            return None
        self.unreachable.discard(peer)
        self._last_sent[peer] = self._clock()
        if not batch:
            return 0
        await asyncio.to_thread(self.log.set_cursor, peer, batch[-1][0])
        lag.set(waiting - len(batch))
        return len(batch)

    def _heartbeat_due(self, peer: str) -> bool:
        last = self._last_sent.get(peer)
        return self.heartbeat_s is not None and (last is None or self._clock() - last >= self.heartbeat_s)

    async def ship_once(self) -> dict[str, int | None]:
        return {peer: await self.ship_to(peer) for peer in self.peers}

    async def rewind(self, peer: str) -> int | None:
        """async design, on rejoining: discard the unshipped local records ``peer`` does not have.
        How many were discarded; None when the peer did not answer (try again later)."""
        log = cast(RewindableStore, self.log)  # _run_peer rewinds only a store that has a tail
        tail = await asyncio.to_thread(log.tail, peer)
        unknown: list[str] = []
        for start in range(0, len(tail), BATCH):
            ids = tail[start : start + BATCH]
            try:
                answer = await self.peers[peer].post_json(self.path + KNOWN, {"ids": ids})
            except (DependencyError, DependencyRejected) as exc:
                logger.warning("rejoining %s: no answer (%s); the tail waits", peer, exc)
                return None
            known = set(answer["known"])
            unknown += [i for i in ids if i not in known]
        if not unknown:
            return 0
        reason = f"async replication: {peer} was promoted without them (unshipped when this instance went down)"
        discarded = await asyncio.to_thread(log.discard, unknown, reason)
        logger.warning("rejoined %s: discarded %d unshipped records (%s)", peer, discarded, reason)
        return discarded

    async def run(self) -> None:
        await asyncio.gather(*(self._run_peer(peer) for peer in self.peers))

    async def _run_peer(self, peer: str) -> None:
        if self.design() == "async" and hasattr(self.log, "tail"):
            while (discarded := await self._guarded(self.rewind, peer)) is None:
                await self._sleep(self.retry_s)  # nothing is shipped before the rejoin is settled
            self.rewound[peer] = discarded
        while True:
            shipped = await self._guarded(self.ship_to, peer)
            if shipped is None:
                await self._sleep(self.retry_s)
            elif shipped < self.batch:
                await self._sleep(self.idle_s)
            else:
                await self._sleep(0)  # a backlog: go on at once, yet let requests be served

    async def _guarded(self, step: Callable[[str], Awaitable[int | None]], peer: str) -> int | None:
        try:
            return await step(peer)
        except Exception:  # e.g. the disk: log it and try again later, never end the loop
            logger.exception("replication with %s: unexpected error", peer)
            return None

    def waiting(self) -> dict[str, int]:
        """peer -> local records not yet acknowledged by it (what GET /replication/status answers)."""
        return {peer: self.log.unshipped(peer, 1)[1] for peer in self.peers}


def read_cursor(db: Database, peer: str) -> int:
    """The seq of the last local record ``peer`` acknowledged (0: none yet)."""
    rows = db.query("SELECT seq FROM replication_cursors WHERE peer = ?", (peer,))
    return rows[0]["seq"] if rows else 0


def write_cursor(db: Database, peer: str, seq: int) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO replication_cursors (peer, seq) VALUES (?, ?) "
            "ON CONFLICT (peer) DO UPDATE SET seq = excluded.seq",
            (peer, seq),
        )


def peer_clients(urls: list[str], dependency: str, ctx: ServiceContext) -> dict[str, DependencyClient]:
    """One client per peer (each must receive every record; one client over all would fail over to one)."""
    return {
        url.rstrip("/"): DependencyClient(dependency, [url], ctx.profiles, ctx.http, faults=ctx.faults) for url in urls
    }


def write_rollback(path: Path, records: list[dict[str, Any]], reason: str) -> None:
    """Append what a rewind discarded, durably, before it is deleted: the evidence an audit reads."""
    now = time.time()
    lines = "".join(json.dumps({**r, "discarded_at": now, "reason": reason}) + "\n" for r in records)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, lines.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
