"""Does a scenario fit a topology (every data center, service and instance its steps and probes name exists), and
the runtime it will run on (each step's kind is one that runtime can do).

One check for `blackout run` (before anything starts), `blackout validate` and the control API's runs (which
go through run). A scenario file alone cannot say which topology it will meet: the profile a run uses names
it (``topology_for``); ``topologies_for`` gives those a file is checked against when none is given.
"""

from __future__ import annotations

from pathlib import Path

from chaos.engine.scenario import Scenario
from chaos.faults.actions import DC, check_action, check_name, check_runtime, parse_action
from chaos.profile_files import profile_file
from chaos.topology import Topology
from services.common.errors import ConfigError, UsageError
from services.common.policy import Profile, load_profile

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def validate(
    scenario: Scenario, topology: Topology, source: str, runtime: tuple[str, frozenset[str]] | None = None
) -> None:
    """Refuse (ConfigError naming ``source`` and the field) a step or probe naming what the topology lacks, and
    with ``runtime`` (its name and capabilities) a step that runtime cannot take (a loss without network control)."""
    held = scenario.hold
    sections = [("timeline", scenario.timeline)]
    sections += [("hold.timeline", held.timeline), ("hold.cleared_by", held.cleared_by)] if held else []
    for field, items in sections:
        for n, item in enumerate(items):
            where = f"{field}.{n}"
            action = parse_action(item, source, where)
            check_action(action, topology, source, where)
            if runtime is not None:
                check_runtime(action, *runtime, source, where)
    for n, probe in enumerate(scenario.hypothesis.probes):
        for kind, check in (("success_rate", probe.success_rate), ("p99", probe.p99)):
            if check is not None and check.dc is not None:
                check_name(check.dc, DC, topology, source, f"hypothesis.probes.{n}.{kind}.dc")


def topology_for(profile: Profile) -> Path:
    """The topology file the profile names: the one a run uses unless told another."""
    return TOPOLOGIES / f"{profile.topology}.yaml"


def topologies_for(scenario: Scenario, source: str) -> list[Path]:
    """The topologies a scenario may meet: those of the profiles it is written for (its ``profiles:``), else
    every topology in topologies/."""
    if not scenario.profiles:
        return sorted(TOPOLOGIES.glob("*.yaml"))
    paths = []
    for name in scenario.profiles:
        try:
            paths.append(topology_for(load_profile(profile_file(name))))
        except UsageError as exc:
            raise ConfigError(source, f"field 'profiles.{name}': {exc}") from None
    return sorted(set(paths))
