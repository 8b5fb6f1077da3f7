"""One end-to-end search on a real stack: the fragile topology's single points of failure under the naive profile,
exactly those a reader of topologies/fragile.yaml predicts."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from chaos.search.atoms import LINK_KINDS
from chaos.search.run import SearchOptions, run_search
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[3]


def predicted(home_gateway: str, home_dc: str) -> set[tuple[str, ...]]:
    """What fragile.yaml says: the user's own gateway and data center, the systems of record only dc-east holds
    (auth verifies every naive session; a views read that fails is shown as 0 views), and the gateway's links to
    them. A recommender or earnings fault only degrades a feed (a generic one)."""
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml")
    records = [name for name, (_, inst) in topology.instances().items() if inst.service in ("auth", "views")]
    assert records == ["auth-east", "views-east"]
    cuts = {(f"power {home_dc}",), ("power dc-east",)}
    cuts |= {(f"{kind} {name}",) for name in [home_gateway, *records] for kind in ("crash", "blackhole")}
    cuts |= {(f"{kind} {home_gateway}->{name}",) for name in records for kind in LINK_KINDS}
    return cuts


def test_the_naive_fragile_stack_breaks_at_exactly_the_predicted_single_points(tmp_path):
    options = SearchOptions(
        profile=PROJECT / "profiles" / "naive.yaml", max_faults=1, runs_root=tmp_path, replay=False, any_ports=True
    )
    run = run_search(options, Console(quiet=True))
    data = json.loads((run.out_dir / "search.json").read_text())
    found = {a["action"]: {tuple(c) for c in a["minimal_broken"]} for a in data["actions"]}
    assert found == {
        "feed @ dc-east": predicted("gateway-east", "dc-east"),
        "feed @ dc-west": predicted("gateway-west", "dc-west"),
    }
    for action in data["actions"]:
        assert action["complete"] and action["depth"] == 1
        assert action["experiments"] < action["brute_force"]
    assert (run.out_dir / "cuts.png").stat().st_size > 10_000
    assert "power dc-east" in (run.out_dir / "report.md").read_text()
    assert len(list((run.out_dir / "scenarios").glob("*.yaml"))) == len(set().union(*found.values()))
