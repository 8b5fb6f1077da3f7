"""Link faults live inside the services: the controller PUTs them to each instance's /admin/faults and renews
their lease; an instance drops a fault whose lease ran out by itself, so none outlives a dead controller.

Why in the services and not in a proxy between them: the shared HTTP client (latency, errors, blackhole on
calls to given targets) and a server middleware (brownout) exist in every runtime, local processes and
containers alike, and need no change of addresses; a proxy per link would have to be rebuilt per runtime.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from chaos.topology import Topology

LEASE_S = 10.0  # a fault outlives its controller by at most this long
RENEW_S = 2.0
PUT_TIMEOUT_S = 1.0  # a dark instance accepts and never answers: do not wait on it


@dataclass
class LinkFault:
    """One fault as pushed: the instances that carry it and the body each gets."""

    id: str
    instances: list[str]
    body: dict
    outcomes: dict[str, str] = field(default_factory=dict)


class LinkFaults:
    def __init__(self, topology: Topology, admin_secret: str) -> None:
        self.topology = topology
        self._headers = {"Authorization": f"Bearer {admin_secret}"}
        self._faults: dict[str, LinkFault] = {}
        self._lock = threading.Lock()
        # Held while a fault is pushed or deleted: a renewal caught mid-flight by remove() lands before the
        # DELETE, never after it (a late PUT would bring a reverted fault back until its lease ran out).
        self._pushing = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="link-faults")
        self._renewer = threading.Thread(target=self._renew_forever, name="lease-renewer", daemon=True)
        self._renewer.start()

    def add(self, fault_id: str, instances: list[str], body: dict) -> dict[str, str]:
        fault = LinkFault(fault_id, instances, {**body, "lease_s": LEASE_S})
        with self._pushing:
            with self._lock:
                self._faults[fault_id] = fault
            fault.outcomes = self._push(fault)
        return fault.outcomes

    def remove(self, fault_id: str) -> dict[str, str]:
        with self._pushing:
            with self._lock:
                fault = self._faults.pop(fault_id, None)
            if fault is None:
                return {}
            return dict(zip(fault.instances, self._pool.map(lambda n: self._delete(n, fault_id), fault.instances)))

    def active(self) -> list[str]:
        with self._lock:
            return list(self._faults)

    def close(self) -> None:
        """Remove every fault (the rollback of last resort) and stop renewing."""
        for fault_id in self.active():
            self.remove(fault_id)
        self._stop.set()
        self._renewer.join(timeout=5)
        self._pool.shutdown(wait=True)

    def _push(self, fault: LinkFault) -> dict[str, str]:
        return dict(zip(fault.instances, self._pool.map(lambda n: self._put(n, fault), fault.instances)))

    def _put(self, name: str, fault: LinkFault) -> str:
        try:
            answer = httpx.put(f"{self.topology.url(name)}/admin/faults/{fault.id}", json=fault.body,
                               headers=self._headers, timeout=PUT_TIMEOUT_S)  # fmt: skip
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__}): renewed when it is back"
        return "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}: {answer.text[:200]}"

    def _delete(self, name: str, fault_id: str) -> str:
        try:
            answer = httpx.delete(f"{self.topology.url(name)}/admin/faults/{fault_id}", headers=self._headers,
                                  timeout=PUT_TIMEOUT_S)  # fmt: skip
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__}): its lease ends it"
        return "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}"

    def renew(self) -> None:
        """Re-PUT every active fault whole: an instance that was dark (or restarted) gets it back too."""
        with self._lock:
            faults = list(self._faults.values())
        for fault in faults:
            with self._pushing:
                with self._lock:
                    still_active = self._faults.get(fault.id) is fault
                if still_active and not self._stop.is_set():
                    fault.outcomes = self._push(fault)

    def _renew_forever(self) -> None:
        while not self._stop.wait(RENEW_S):
            self.renew()


def link_bodies(topology: Topology, kind: str, spec: object, seed: int) -> list[tuple[list[str], dict]]:
    """(instances to carry it, body) for one link action; a partition is a blackhole both ways."""
    if kind == "brownout":
        return [(topology.find(spec.target), {"kind": "brownout", "targets": [], "latency_ms": spec.ms,  # type: ignore[attr-defined]
                                              "jitter_ms": spec.jitter_ms, "seed": seed})]  # type: ignore[attr-defined]
    if kind == "partition":
        a, b = spec  # type: ignore[misc]
        return link_bodies(topology, "blackhole", _Pair(a, b), seed) + link_bodies(topology, "blackhole", _Pair(b, a), seed)
    sources, targets = topology.find(spec.source), topology.find(spec.to)  # type: ignore[attr-defined]
    body: dict = {"kind": {"errors": "error"}.get(kind, kind), "targets": [topology.url(t) for t in targets], "seed": seed}
    if kind == "latency":
        body |= {"latency_ms": spec.ms, "jitter_ms": spec.jitter_ms}  # type: ignore[attr-defined]
    if kind == "errors":
        body["error_rate"] = spec.rate  # type: ignore[attr-defined]
    return [(sources, body)]


@dataclass(frozen=True)
class _Pair:
    source: str
    to: str
