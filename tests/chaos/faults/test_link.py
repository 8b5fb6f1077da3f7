"""LinkFaults' renewals and removals, with the instances' admin API faked (no processes, no sockets)."""
from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from chaos.faults import link
from chaos.faults.link import LinkFaults
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[3]


class FakeAdminAPI:
    """Records each PUT and DELETE as it completes; the first renewal PUT is held until a DELETE comes (or 0.5 s)."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.deleted = threading.Event()
        self.renewing = threading.Event()
        self.hold_next_put = False

    def put(self, url: str, **_: object) -> httpx.Response:
        if self.hold_next_put:
            self.hold_next_put = False
            self.renewing.set()
            self.deleted.wait(0.5)  # a remove() racing this renewal would DELETE now, before the PUT lands
        self.done.append("PUT " + url.rsplit("/", 1)[-1])
        return httpx.Response(200)

    def delete(self, url: str, **_: object) -> httpx.Response:
        self.done.append("DELETE " + url.rsplit("/", 1)[-1])
        self.deleted.set()
        return httpx.Response(200)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeAdminAPI:
    fake = FakeAdminAPI()
    monkeypatch.setattr(link.httpx, "put", fake.put)
    monkeypatch.setattr(link.httpx, "delete", fake.delete)
    monkeypatch.setattr(link, "RENEW_S", 3600.0)  # renewals only when the test calls renew()
    return fake


def test_a_renewal_in_flight_never_lands_after_the_fault_was_removed(api: FakeAdminAPI):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml")
    links = LinkFaults(topology, "admin-" + "x" * 20)
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
