"""What the control room shows per instance, probed on a real stack: a brownout of views-east shows as slow calls
to views wherever views-east is called (the gateway, and the recommender the gateway calls), and the other calls
stay fast: following the slow calls leads to views (the brownout card's second hint points there)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx

from chaos.faults.actions import parse_action
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
from chaos.workshop.probe import InstanceProbe
from services.common.seed import DEMO_PASSWORD

PROJECT = Path(__file__).resolve().parents[3]


def calls_of(probe: InstanceProbe, name: str) -> dict[str, float]:
    return {c["dependency"]: c["mean_ms"] for c in probe.instances()[name]["calls"]}


def test_a_brownout_shows_as_slow_calls_to_its_service_on_the_gateway(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    with LocalRuntime(topology, tmp_path, profile=PROJECT / "profiles" / "naive.yaml") as runtime:
        injector = FaultInjector(runtime, Journal(tmp_path), random.Random(1))
        probe = InstanceProbe(runtime)
        east = runtime.topology.gateways()["dc-east"]
        try:
            assert calls_of(probe, "gateway-east") == {}  # one snapshot: nothing to compare yet
            fault_id, _ = injector.apply(parse_action({"brownout": {"target": "views-east", "ms": 900}}, "test", "x"))
            token = httpx.post(east + "/login", json={"username": "viewer-0001", "password": DEMO_PASSWORD}, timeout=30)
            headers = {"Authorization": f"Bearer {token.json()['token']}"}
            deadline, seen = time.monotonic() + 60, {}
            while time.monotonic() < deadline and "views" not in seen:
                assert httpx.get(east + "/feed", headers=headers, timeout=30).status_code == 200
                seen = calls_of(probe, "gateway-east")  # the probe looks again once its cache (1 s) is stale
            assert seen["views"] >= 800 and seen["auth"] < 500, seen  # each call to views-east waited it out
            recommender = calls_of(probe, "recommender-east")  # the gateway's slow recommender calls: why
            assert recommender.get("views", 0) >= 800, (seen, recommender)
            assert calls_of(probe, "views-east") == {}  # views calls nobody: the trail ends there
            assert fault_id is not None
            injector.revert(fault_id)
        finally:
            injector.revert_all()
            injector.close()
            probe.close()
