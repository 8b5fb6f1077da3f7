"""LinkFaults' renewals and removals, with the instances' admin API faked (no processes, no sockets)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import pytest

from chaos.faults import link
from chaos.faults.link import FaultNotLifted, LinkFaults
from chaos.journal import Journal
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[3]
TOPOLOGY = load_topology(PROJECT / "topologies" / "fragile.yaml")
SECRET = "admin-" + "x" * 20
BODY = {"kind": "blackhole", "targets": []}


class FakeAdminAPI:
    """Records each PUT and DELETE as it completes; the first renewal PUT is held until a DELETE comes (or 0.5 s).

    ``broken``: fault ids whose every PUT after the first raises (a bug, not an unanswered call);
    ``silent``: instances that never answer a DELETE (a hung process: the call times out).
    """

    def __init__(self) -> None:
        self.done: list[str] = []
        self.calls: list[tuple[str, str, str]] = []  # (method, instance, fault id), answered or not
        self.deleted = threading.Event()
        self.renewing = threading.Event()
        self.hold_next_put = False
        self.broken: set[str] = set()
        self.silent: set[str] = set()
        self._lock = threading.Lock()

    def _record(self, method: str, url: str) -> tuple[str, str]:
        base, fault_id = url.split("/admin/faults/")
        instance = next(n for n in TOPOLOGY.instances() if TOPOLOGY.url(n) == base)
        with self._lock:
            self.calls.append((method, instance, fault_id))
        return instance, fault_id

    def handle(self, request: httpx.Request) -> httpx.Response:
        """The instances' side of an httpx.MockTransport."""
        return (self.put if request.method == "PUT" else self.delete)(str(request.url))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def put(self, url: str) -> httpx.Response:
        _, fault_id = self._record("PUT", url)
        if fault_id in self.broken and ("PUT", fault_id) in [(m, f) for m, _, f in self.calls[:-1]]:
            raise RuntimeError("a bug in one renewal")
        if self.hold_next_put:
            self.hold_next_put = False
            self.renewing.set()
            self.deleted.wait(0.5)  # a remove() racing this renewal would DELETE now, before the PUT lands
        self.done.append("PUT " + fault_id)
        return httpx.Response(200)

    def delete(self, url: str) -> httpx.Response:
        instance, fault_id = self._record("DELETE", url)
        if instance in self.silent:
            raise httpx.ReadTimeout("no answer")
        self.done.append("DELETE " + fault_id)
        self.deleted.set()
        return httpx.Response(200)

    def count(self, method: str, fault_id: str, instance: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, i, f in self.calls if (m, f) == (method, fault_id) and instance in (None, i))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeAdminAPI:
    fake = FakeAdminAPI()
    monkeypatch.setattr(link, "RENEW_S", 3600.0)  # renewals only when the test calls renew()
    return fake


def test_a_renewal_in_flight_never_lands_after_the_fault_was_removed(api: FakeAdminAPI):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml")
    links = LinkFaults(topology, "admin-" + "x" * 20, transport=api.transport())
    try:
        links.add("split", ["gateway-west"], {"kind": "blackhole", "targets": []})
        api.hold_next_put = True
        renewal = threading.Thread(target=links.renew)
        renewal.start()
        assert api.renewing.wait(5)
        assert links.remove("split") == {"gateway-west": "ok"}
        renewal.join(5)
        # the instance's last word on the fault is the DELETE: it is gone, not back until its lease ends
        assert api.done == ["PUT split", "PUT split", "DELETE split"]
        links.renew()
        assert api.done[-1] == "DELETE split" and links.active() == []
    finally:
        links.close()


def test_an_exception_renewing_one_fault_stops_neither_the_renewer_nor_the_other_faults(api, monkeypatch, tmp_path):
    monkeypatch.setattr(link, "RENEW_S", 0.05)
    api.broken = {"bad"}
    journal = Journal(tmp_path)
    links = LinkFaults(TOPOLOGY, SECRET, journal=journal, transport=api.transport())
    try:
        links.add("bad", ["gateway-west"], BODY)
        links.add("good", ["gateway-east"], BODY)
        deadline = time.monotonic() + 10
        while api.count("PUT", "good") < 6:  # renewed round after round, though "bad" raises in every one
            assert time.monotonic() < deadline, f"renewals stopped: {api.calls}"
            time.sleep(0.02)
        assert api.count("PUT", "bad") >= 4  # still tried: the bug may be passing
        failed = [e for e in journal.read() if e["event"] == "lease-renewal-failed"]
        assert [e["id"] for e in failed] == ["bad"]  # journaled once, not every round
        assert "RuntimeError: a bug in one renewal" in failed[0]["outcomes"]["gateway-west"]
    finally:
        links.close()


def test_a_quiet_faults_failed_renewal_is_journaled_but_not_logged(api, monkeypatch, tmp_path, caplog):
    """The controller's log lands in the team's folder (supervisor.log): an exercise's fault is named in the
    round's journal (the instructor's) only."""
    monkeypatch.setattr(link, "RENEW_S", 0.05)
    api.broken = {"hidden", "shown"}
    journal = Journal(tmp_path)
    links = LinkFaults(TOPOLOGY, SECRET, journal=journal, transport=api.transport())
    try:
        with caplog.at_level(logging.WARNING, logger="blackout.faults"):
            links.add("hidden", ["gateway-west"], {**BODY, "quiet": True})
            links.add("shown", ["gateway-east"], BODY)
            deadline = time.monotonic() + 10
            while len([e for e in journal.read() if e["event"] == "lease-renewal-failed"]) < 2:
                assert time.monotonic() < deadline, f"no failed renewal journaled: {api.calls}"
                time.sleep(0.02)
    finally:
        links.close()
    assert "renewing fault shown failed" in caplog.text  # outside an exercise, as before
    assert "hidden" not in caplog.text


def test_remove_retries_a_delete_until_the_carrier_confirms(api):
    links = LinkFaults(TOPOLOGY, SECRET, transport=api.transport())
    try:
        links.add("split", ["gateway-west", "earnings-west"], BODY)
        api.silent = {"gateway-west"}
        removal = threading.Thread(target=links.remove, args=("split",))
        removal.start()
        deadline = time.monotonic() + 5
        while api.count("DELETE", "split", "gateway-west") < 2:  # it answered nothing, yet it is asked again
            assert time.monotonic() < deadline and removal.is_alive(), f"no retry: {api.calls}"
            time.sleep(0.01)
        assert links.active() == ["split"]  # listed until every carrier confirmed
        api.silent = set()  # the carrier answers again
        removal.join(10)
        assert links.active() == [] and api.done[-1] == "DELETE split"
        assert api.count("DELETE", "split", "earnings-west") == 1  # a carrier that confirmed is not asked again
    finally:
        links.close()


def test_a_removal_never_confirmed_fails_and_the_fault_stays_listed_and_renewed(api, monkeypatch):
    monkeypatch.setattr(link, "REMOVE_WITHIN_S", 0.3)
    links = LinkFaults(TOPOLOGY, SECRET, transport=api.transport())
    try:
        links.add("split", ["gateway-west", "earnings-west"], BODY)
        api.silent = {"gateway-west"}
        started = time.monotonic()
        with pytest.raises(FaultNotLifted, match="split was not lifted on gateway-west"):
            links.remove("split")
        assert time.monotonic() - started < 2  # within its bound
        assert links.active() == ["split"]
        links.renew()  # still in force there, so still renewed there; earnings-west confirmed, so not there
        assert (api.count("PUT", "split", "gateway-west"), api.count("PUT", "split", "earnings-west")) == (2, 1)
        api.silent = set()
        assert links.remove("split") == {"gateway-west": "ok"}
        assert links.active() == []
    finally:
        links.close()


def test_a_carrier_that_is_down_needs_no_retry(api):
    links = LinkFaults(TOPOLOGY, SECRET, down=lambda name: name == "gateway-west", transport=api.transport())
    try:
        links.add("split", ["gateway-west"], BODY)
        api.silent = {"gateway-west"}  # powered off: its port accepts and never answers
        assert links.remove("split")["gateway-west"].startswith("ok: down")
        assert api.count("DELETE", "split") == 1 and links.active() == []
    finally:
        links.close()
