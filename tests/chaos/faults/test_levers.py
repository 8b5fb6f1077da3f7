"""The on-call levers on a real stack (naive, fragile) with real users (locust): each one's effect is seen where
users are (the gateways they reach, the answers they get), and each one's rollback puts things back."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaos.faults.actions import parse_action
from chaos.faults.injector import FaultInjector
from chaos.faults.link import RENEW_S
from chaos.journal import Journal
from chaos.loadgen import LoadGenerator
from chaos.rundir import LOAD_CONTROL_FILE
from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
from loadtest.control import DRAIN_TTL_S
from services.common.errors import UsageError
from services.common.policy import load_profile
from services.common.seed import DEMO_PASSWORD

PROJECT = Path(__file__).resolve().parents[3]
NAIVE = PROJECT / "profiles" / "naive.yaml"
OPS_ROUTES = ("/healthz", "/metrics", "/admin")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[LocalRuntime, FaultInjector, LoadGenerator]]:
    run_dir = tmp_path_factory.mktemp("levers")
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    with LocalRuntime(topology, run_dir, profile=NAIVE) as runtime:
        load = LoadGenerator(run_dir, runtime.topology.gateways(), 4, max_seconds=600, client_attempts=3, seed=5)
        injector = FaultInjector(
            runtime, Journal(run_dir), random.Random(5), profile=load_profile(NAIVE), load=load, base_users=4
        )
        try:
            load.start()
            load.wait_logged_in()
            yield runtime, injector, load
        finally:
            injector.revert_all()
            injector.close()
            load.stop()


def pull(injector: FaultInjector, body: dict) -> tuple[str | None, dict]:
    return injector.apply(parse_action(body, "test", "body"))


def user_requests(runtime: LocalRuntime, name: str) -> float:
    """Requests users made to an instance, from its own /metrics (health checks, scrapes and admin calls aside)."""
    text = httpx.get(runtime.topology.url(name) + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "blackout_http_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and not sample.labels.get("route", "").startswith(OPS_ROUTES)
    )


def poll(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.25)
    return result


def rising(runtime: LocalRuntime, name: str, over_s: float = 2.0) -> bool:
    before = user_requests(runtime, name)
    time.sleep(over_s)  # the span over which the count is compared, not a readiness wait
    return user_requests(runtime, name) > before


def login(gateway: str) -> httpx.Response:
    return httpx.post(gateway + "/login", json={"username": "viewer-0003", "password": DEMO_PASSWORD}, timeout=30)


def test_a_drain_sends_the_users_elsewhere_after_the_dns_ttl_and_undrain_brings_them_back(stack):
    runtime, injector, load = stack
    assert rising(runtime, "gateway-west")  # dc-west's users are at home
    east_before = user_requests(runtime, "gateway-east")
    drained_at = time.monotonic()
    fault_id, output = pull(injector, {"drain": "dc-west"})
    assert output["to"] == ["dc-east"] and json.loads((load.run_dir / LOAD_CONTROL_FILE).read_text())["drained"]
    # every user's cached answer expires within the TTL: then gateway-west gets no user request at all
    poll(lambda: not rising(runtime, "gateway-west"), DRAIN_TTL_S + 15, "users kept reaching gateway-west")
    assert time.monotonic() - drained_at >= 1.0  # not at once: resolvers keep the old answer a while
    assert user_requests(runtime, "gateway-east") > east_before  # dc-west's users went to dc-east instead
    with pytest.raises(UsageError, match="no data center"):
        pull(injector, {"drain": "dc-east"})  # the last one left
    assert fault_id is not None
    injector.revert(fault_id)
    poll(lambda: rising(runtime, "gateway-west"), DRAIN_TTL_S + 15, "users never came back to gateway-west")


def test_shed_logins_refuses_logins_past_the_rate_at_the_gateways_until_lifted(stack):
    runtime, injector, _ = stack
    east = runtime.topology.gateways()["dc-east"]
    fault_id, _ = pull(injector, {"shed_logins": {"per_s": 1}})
    answers = [login(east) for _ in range(5)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and int(refused[0].headers["retry-after"]) >= 1, [a.status_code for a in answers]
    assert any(a.status_code == 200 for a in answers)  # the rate still passes
    assert fault_id is not None
    injector.revert(fault_id)
    assert [login(east).status_code for _ in range(5)] == [200] * 5


def test_restart_instance_starts_the_dead_one_and_settles_its_kill(stack):
    runtime, injector, _ = stack
    west = runtime.topology.gateways()["dc-west"]
    killed, _ = pull(injector, {"kill_instance": "recommender-west"})
    token = login(west).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    feed = httpx.get(west + "/feed", headers=headers, timeout=30).json()["items"]
    assert {item["source"] for item in feed} == {"generic"}  # what users see without their recommender
    started = time.monotonic()
    output = pull(injector, {"restart_instance": "recommender"})[1]  # a service: its one dead instance
    print(f"restart-instance took {time.monotonic() - started:.2f}s")
    assert output["instances"] == ["recommender-west"] and output["healthy"] and output["settled"] == [killed]
    assert killed not in injector.active_ids()
    feed = httpx.get(west + "/feed", headers=headers, timeout=30).json()["items"]
    assert {item["source"] for item in feed} != {"generic"}


def test_restart_instance_replaces_a_running_process_and_its_brownout_goes_with_it(stack):
    runtime, injector, _ = stack
    brownout, _ = pull(injector, {"brownout": {"target": "views-east", "ms": 900}})
    pid = runtime.status()["views-east"]["pid"]
    output = pull(injector, {"restart_instance": "views-east"})[1]
    assert output["killed_first"] is not None and runtime.status()["views-east"]["pid"] != pid
    assert output["settled"] == [brownout] and brownout not in injector.active_ids()
    time.sleep(RENEW_S + 1)  # a lease renewal round has passed: it must not bring the brownout back
    views = runtime.topology.url("views-east")
    admin = {"Authorization": f"Bearer {runtime.admin_secret}"}
    assert httpx.get(views + "/admin/faults", headers=admin, timeout=5).json() == []


def test_a_dependency_setting_changes_one_dependency_live_and_its_rollback_puts_it_back(stack):
    runtime, injector, _ = stack
    east = runtime.topology.gateways()["dc-east"]
    slow, _ = pull(injector, {"latency": {"from": "gateway-east", "to": "auth-east", "ms": 200}})
    assert login(east).status_code == 200  # 200 ms is well inside naive's 1-s timeout
    setting, output = pull(
        injector, {"dependency": {"callers": "gateway", "dependency": "auth", "timeout_s": 0.1, "attempts": 1}}
    )
    assert output == {"gateway-east": "ok", "gateway-west": "ok"}
    started = time.monotonic()
    assert login(east).status_code == 504  # one 100-ms try: the slow auth now times out, fast
    assert time.monotonic() - started < 1.0
    assert setting is not None and slow is not None
    injector.revert(setting)
    admin = {"Authorization": f"Bearer {runtime.admin_secret}"}
    policy = httpx.get(east + "/admin/profile", headers=admin, timeout=5).json()
    assert policy == load_profile(NAIVE).model_dump(mode="json")
    assert login(east).status_code == 200
    injector.revert(slow)


def test_a_deploy_rolls_instance_by_instance_then_reaches_the_users_edge(stack):
    runtime, injector, load = stack
    running = [n for n, info in runtime.status().items() if info["state"] == "running"]
    started = time.monotonic()
    fault_id, output = pull(injector, {"deploy": {"profile": "resilient", "step": "0.3s"}})
    took = time.monotonic() - started
    print(f"deploy of {len(running)} instances took {took:.2f}s")
    assert took >= 0.3 * len(running) and set(output["rolled"]) == set(running)
    for name in running:
        assert httpx.get(runtime.topology.url(name) + "/healthz", timeout=5).json()["profile"] == "resilient"
    control = json.loads((load.run_dir / LOAD_CONTROL_FILE).read_text())
    assert (control["edge_failover"], control["client_attempts"]) == (True, 1)  # the users' edge too
    assert fault_id is not None
    injector.revert(fault_id)
    control = json.loads((load.run_dir / LOAD_CONTROL_FILE).read_text())
    assert (control["edge_failover"], control["client_attempts"]) == (False, 3)
    assert {httpx.get(runtime.topology.url(n) + "/healthz", timeout=5).json()["profile"] for n in running} == {"naive"}


def test_a_power_on_may_leave_services_dark_and_a_later_one_brings_them(stack):
    runtime, injector, _ = stack
    pull(injector, {"power_off": "dc-east"})
    output = pull(injector, {"power_on": {"dc": "dc-east", "boot_order": ["gateway", "earnings"], "rest": "dark"}})[1]
    assert output["instances"] == ["gateway-east", "earnings-east"]
    state = runtime.status()
    assert {n for n in runtime.topology.names("dc-east") if state[n]["state"] == "running"} == {
        "gateway-east",
        "earnings-east",
    }
    assert not [f for f in injector.active() if f.action.kind == "power_off"]  # the cut is settled
    rollbacks = injector.revert_all()  # the last resort brings a half-booted data center back whole
    assert {r["id"] for r in rollbacks} >= {"start-auth-east", "start-views-east", "start-recommender-east"}
    assert all(info["state"] == "running" for info in runtime.status().values())
    pull(injector, {"power_off": "dc-east"})
    pull(injector, {"power_on": {"dc": "dc-east", "boot_order": ["gateway", "earnings"], "rest": "dark"}})
    output = pull(injector, {"power_on": {"dc": "dc-east", "boot_order": ["auth", "views"]}})[1]
    assert output["instances"][:2] == ["auth-east", "views-east"] and output["healthy"]
    assert all(info["state"] == "running" for info in runtime.status().values())
    with pytest.raises(UsageError, match="powered on already"):
        pull(injector, {"power_on": "dc-east"})
