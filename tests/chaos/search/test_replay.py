"""A minimal cut set becomes a scenario the library accepts, with a real action for every atom."""

from __future__ import annotations

from pathlib import Path

from chaos.engine.fit import validate
from chaos.engine.scenario import load_scenario
from chaos.search.atoms import Atom
from chaos.search.oracle import Entry
from chaos.search.replay import scenario, write_scenario
from chaos.topology import load_topology
from services.common.policy import load_profile

PROJECT = Path(__file__).resolve().parents[3]


def test_a_cut_set_is_written_as_a_valid_scenario_of_the_library(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "resilient.yaml")
    profile = load_profile(PROJECT / "profiles" / "resilient.yaml")
    cut = frozenset(
        {
            Atom("power", "dc-west"),
            Atom("crash", "gateway-east"),
            Atom("slow", "views-east", "gateway-east"),
            Atom("error", "auth-west", "gateway-west"),
        }
    )
    path = write_scenario(tmp_path / "cut.yaml", scenario(cut, [Entry("feed", "dc-east")], topology, profile))
    loaded = load_scenario(path)
    validate(loaded, topology, str(path))  # every name it uses exists in the topology
    kinds = sorted(next(k for k in step if k not in ("at", "for")) for step in loaded.timeline)
    assert kinds == ["errors", "kill_instance", "latency", "power_off"]
    latency = next(step["latency"] for step in loaded.timeline if "latency" in step)
    assert latency["ms"] > profile.for_dependency("views").timeout_s * 1000  # past the caller's timeout
    probes = [p.label() for p in loaded.hypothesis.probes]
    assert "feed @ dc-east success >= 90%" in probes and "zero_view_displays <= 0" in probes
