"""A whole stack in one data center (gateway, auth, views, earnings, recommender), as real processes on
free loopback ports: for tests of what the services refuse each other and their callers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fakes.processes import alive

from chaos.journal import Journal
from chaos.runtime.local import LocalRuntime
from chaos.topology import Topology, parse_topology

PROJECT = Path(__file__).resolve().parents[2]


def one_dc() -> Topology:
    return parse_topology(
        {
            "name": "one-dc",
            "data_centers": {
                "dc-1": {
                    "instances": {
                        "gateway-1": {
                            "service": "gateway",
                            "port": 0,
                            "depends_on": {
                                "auth": ["auth-1"],
                                "views": ["views-1"],
                                "recommender": ["recommender-1"],
                                "earnings": ["earnings-1"],
                            },
                        },
                        "auth-1": {"service": "auth", "port": 0},
                        "views-1": {"service": "views", "port": 0},
                        "earnings-1": {
                            "service": "earnings",
                            "port": 0,
                            "depends_on": {"views": ["views-1"], "recommender": ["recommender-1"]},
                        },
                        "recommender-1": {"service": "recommender", "port": 0, "depends_on": {"views": ["views-1"]}},
                    }
                }
            },
        },
        "test",
    )


@contextmanager
def running(run_dir: Path, *, zygote: bool = True) -> Iterator[LocalRuntime]:
    """``zygote=False``: every instance is its own exec'd process (its /proc environ is then its environment)."""
    runtime = LocalRuntime(one_dc(), run_dir, profile=PROJECT / "profiles" / "naive.yaml")
    runtime.use_zygote = zygote
    with runtime:
        yield runtime
    started = [pid for e in Journal(runtime.run_dir).read() for pid in e.get("pids", {}).values()]
    assert started and not alive(started), "a process outlived `down`"
