"""Link faults live inside the services: the controller PUTs them to each instance's /admin/faults and renews
their lease; an instance drops a fault whose lease ran out by itself, so none outlives a dead controller.

Why in the services and not in a proxy between them: the shared HTTP client (latency, errors, blackhole on
calls to given targets) and a server middleware (brownout) exist in every runtime, local processes and
containers alike, and need no change of addresses; a proxy per link would have to be rebuilt per runtime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay, wait_exponential

from chaos.instance_client import LINK_S, InstanceClient
from chaos.journal import EventName, Journal
from chaos.runtime.base import RuntimeError_
from chaos.topology import Topology
from services.common.api import ADMIN_FAULTS

log = logging.getLogger("blackout.faults")

LEASE_S = 10.0  # a fault outlives its controller by at most this long
RENEW_S = 2.0
# Renewals of every (fault, carrier) run at once: a round costs one timeout however many carriers are dark
# (one after the other, eight dark ones outran the lease). Beyond this many carriers a round takes longer.
MAX_CALLS = 64
# remove() retries a carrier's DELETE (with backoff) this long before it says the fault was not lifted. A
# removal blocks that fault's renewals meanwhile, so RENEW_S + REMOVE_WITHIN_S + LINK_S < LEASE_S:
# a fault whose removal failed is renewed again before any carrier lets it lapse.
REMOVE_WITHIN_S = 5.0
LIFTED = "ok"  # a DELETE outcome that confirms the carrier holds the fault no longer
FAILED = "error"  # an outcome of an unexpected exception (not an unanswered call)


class FaultNotLifted(RuntimeError_):
    """A carrier never confirmed a DELETE: the fault stays active there (still listed, still renewed), so what
    the controller lists is what is in force. (A DELETE that timed out may land late; the next renewal puts
    the fault back, as listed.)"""


@dataclass(eq=False)
class LinkFault:
    """One fault as pushed: the instances that carry it and the body each gets."""

    id: str
    instances: list[str]
    body: dict[str, Any]
    outcomes: dict[str, str] = field(default_factory=dict)
    # Held while the fault is pushed, renewed or deleted: a renewal caught mid-flight by remove() lands
    # before the DELETE, never after it (a late PUT would bring a lifted fault back until its lease ran out).
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def quiet(self) -> bool:
        """An exercise's: the controller's log (in the team's folder) does not name it either; the journal does."""
        return bool(self.body.get("quiet"))


class LinkFaults:
    def __init__(
        self,
        topology: Topology,
        admin_secret: str,
        *,
        journal: Journal | None = None,
        down: Callable[[str], bool] = lambda name: False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``down(name)``: the instance has no process (powered off, killed), so no fault either: a DELETE
        it cannot answer needs no retry. ``transport``: the instances' (a fake one in tests)."""
        self.topology = topology
        self.journal = journal
        self._down = down
        self._client = InstanceClient(LINK_S, admin_secret=admin_secret, transport=transport)  # shared by the pool
        self._faults: dict[str, LinkFault] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=MAX_CALLS, thread_name_prefix="link-faults")
        self._renewer = threading.Thread(target=self._renew_forever, name="lease-renewer", daemon=True)
        self._renewer.start()

    def add(self, fault_id: str, instances: list[str], body: dict[str, Any]) -> dict[str, str]:
        fault = LinkFault(fault_id, list(instances), {**body, "lease_s": LEASE_S})
        with fault.lock:
            with self._lock:
                self._faults[fault_id] = fault
            fault.outcomes = self._each(fault, self._put)
        return fault.outcomes

    def remove(self, fault_id: str) -> dict[str, str]:
        """DELETE the fault on every carrier, each retried for up to REMOVE_WITHIN_S. The fault stays listed (and
        renewed) until every carrier confirmed; FaultNotLifted names the ones that did not."""
        with self._lock:
            fault = self._faults.get(fault_id)
        if fault is None:
            return {}
        with fault.lock:
            with self._lock:
                if self._faults.get(fault_id) is not fault:
                    return {}  # lifted meanwhile by another remove()
            outcomes = self._each(fault, self._lift)
            left = [name for name in fault.instances if not outcomes[name].startswith(LIFTED)]
            with self._lock:
                if left:
                    fault.instances = left  # the others confirmed: renewals must not put it back there
                else:
                    del self._faults[fault_id]
        if left:
            raise FaultNotLifted(
                f"fault {fault_id} was not lifted on {', '.join(left)}: no DELETE confirmed within "
                f"{REMOVE_WITHIN_S:g}s ({'; '.join(f'{n}: {outcomes[n]}' for n in left)}); it stays "
                "active there, and listed: remove it again"
            )
        return outcomes

    def active(self) -> list[str]:
        with self._lock:
            return list(self._faults)

    def close(self) -> None:
        """Remove every fault (the rollback of last resort) and stop renewing: one that could not be removed
        lapses when its lease ends."""
        for fault_id in self.active():
            try:
                self.remove(fault_id)
            except FaultNotLifted as exc:
                with self._lock:
                    fault = self._faults.get(fault_id)
                if fault is None or not fault.quiet:
                    log.warning("%s", exc)
        self._stop.set()
        self._renewer.join(timeout=5)
        self._pool.shutdown(wait=True)
        self._client.close()

    def renew(self) -> None:
        """Re-PUT every listed fault whole, every carrier at once: an instance that was dark (or restarted) gets
        it back too. A fault being added or removed right now is left to that call."""
        with self._lock:
            faults = list(self._faults.values())
        held = [fault for fault in faults if fault.lock.acquire(blocking=False)]
        try:
            with self._lock:
                current = [f for f in held if self._faults.get(f.id) is f and not self._stop.is_set()]
            calls = {
                (f, name): self._pool.submit(self._call, f, name, self._put) for f in current for name in f.instances
            }
            wait(calls.values())
            for fault in current:
                before, fault.outcomes = fault.outcomes, {name: calls[fault, name].result() for name in fault.instances}
                failed = {n: o for n, o in fault.outcomes.items() if o.startswith(FAILED) and o != before.get(n)}
                if failed:  # once per new error, not every round
                    if not fault.quiet:
                        log.warning("renewing fault %s failed: %s", fault.id, failed)
                    if self.journal is not None:
                        self.journal.record(EventName.LEASE_RENEWAL_FAILED, id=fault.id, outcomes=failed)
        finally:
            for fault in held:
                fault.lock.release()

    def _renew_forever(self) -> None:
        while not self._stop.wait(RENEW_S):
            try:
                self.renew()
            except Exception:  # the renewer must outlive any one round: every lease depends on it
                log.exception("lease renewal round failed; renewing again in %g s", RENEW_S)

    def _each(self, fault: LinkFault, work: Callable[[str, LinkFault], str]) -> dict[str, str]:
        """``work`` on every carrier at once; instance -> outcome."""
        futures = [self._pool.submit(self._call, fault, name, work) for name in fault.instances]
        return dict(zip(fault.instances, (f.result() for f in futures), strict=True))

    def _call(self, fault: LinkFault, name: str, work: Callable[[str, LinkFault], str]) -> str:
        try:
            return work(name, fault)
        except Exception as exc:  # one fault's (or carrier's) bug must not stop the calls for the others
            return f"{FAILED} ({type(exc).__name__}: {exc})"

    def _put(self, name: str, fault: LinkFault) -> str:
        try:
            answer = self._client.put(f"{self.topology.url(name)}{ADMIN_FAULTS}/{fault.id}", fault.body)
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__}): renewed when it is back"
        return "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}: {answer.text[:200]}"

    def _lift(self, name: str, fault: LinkFault) -> str:
        """DELETE until the carrier confirms (or is down), for at most REMOVE_WITHIN_S."""
        retrying = Retrying(
            stop=stop_after_delay(REMOVE_WITHIN_S),
            wait=wait_exponential(multiplier=0.1, max=1.0),
            retry=retry_if_result(lambda outcome: not outcome.startswith(LIFTED)),
            retry_error_callback=_last_answer,
        )
        return retrying(self._delete, name, fault.id)

    def _delete(self, name: str, fault_id: str) -> str:
        try:
            answer = self._client.delete(f"{self.topology.url(name)}{ADMIN_FAULTS}/{fault_id}")
        except httpx.HTTPError as exc:
            if self._down(name):
                return f"{LIFTED}: down, the fault went with its process"
            return f"no answer ({type(exc).__name__})"
        return LIFTED if answer.status_code == 200 else f"HTTP {answer.status_code}"


def _last_answer(state: RetryCallState) -> str:
    """The carrier's last answer, once the deadline passed (tenacity calls this after an attempt: it has one)."""
    assert state.outcome is not None
    answer: str = state.outcome.result()
    return answer


def link_bodies(topology: Topology, kind: str, spec: Any, seed: int) -> list[tuple[list[str], dict[str, Any]]]:
    """(instances to carry it, body) for one link action; a partition is a blackhole both ways. ``spec`` is
    the kind's value (its type follows from ``kind``: chaos/faults/actions.py KINDS)."""
    if kind == "brownout":
        return [
            (
                topology.find(spec.target),
                {
                    "kind": "brownout",
                    "targets": [],
                    "latency_ms": spec.ms,
                    "jitter_ms": spec.jitter_ms,
                    "seed": seed,
                },
            )
        ]
    if kind == "partition":
        a, b = spec
        return link_bodies(topology, "blackhole", _Pair(a, b), seed) + link_bodies(
            topology, "blackhole", _Pair(b, a), seed
        )
    sources, targets = topology.find(spec.source), topology.find(spec.to)
    body: dict[str, Any] = {
        "kind": {"errors": "error"}.get(kind, kind),
        "targets": [topology.url(t) for t in targets],
        "seed": seed,
    }
    if kind == "latency":
        body |= {"latency_ms": spec.ms, "jitter_ms": spec.jitter_ms}
    if kind == "errors":
        body["error_rate"] = spec.rate
    return [(sources, body)]


@dataclass(frozen=True)
class _Pair:
    source: str
    to: str
