"""`blackout validate` through the CLI's own entry point: a scenario naming what its topology lacks is refused
with exit 2 and one line naming the file and the field, never a stack trace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaos import cli

PROJECT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, timeline: list[dict], probes: list[dict] | None = None) -> Path:
    data = {
        "title": "t",
        "description": "d",
        "learn": "l",
        "load": {"users": 2},
        "duration": "60s",
        "hypothesis": {"probes": probes or [{"success_rate": {"min": 0.5}}]},
        "timeline": timeline,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("timeline", "probes", "field"),
    [
        ([{"at": "5s", "power_off": "dc-nowhere"}], None, "timeline.0.power_off"),
        ([{"at": "5s", "kill_instance": "gateway-mars"}], None, "timeline.0.kill_instance"),
        ([{"at": "5s", "blackhole": {"from": "payments", "to": "dc-east"}}], None, "timeline.0.blackhole.from"),
        (
            [{"at": "5s", "power_off": "dc-east"}],
            [{"success_rate": {"dc": "dc-eats", "min": 0.9}}],
            "hypothesis.probes.0.success_rate.dc",
        ),
    ],
)
def test_validate_refuses_a_scenario_naming_an_unknown_target(tmp_path, capsys, timeline, probes, field):
    bad = write(tmp_path, "typo.yaml", timeline, probes)
    assert cli.main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"blackout: {bad}: field '{field}'")


def test_validate_checks_a_scenario_against_the_topology_given(tmp_path, capsys):
    replica = write(tmp_path, "replica.yaml", [{"at": "5s", "kill_instance": "auth-west"}])  # only in resilient
    assert cli.main(["validate", str(replica)]) == 2  # every topology in topologies/: fragile has no auth-west
    assert "topology fragile" in capsys.readouterr().err
    assert cli.main(["validate", str(replica), "--topology", str(PROJECT / "topologies" / "resilient.yaml")]) == 0
    assert capsys.readouterr().out == f"{replica}: valid scenario (topologies: resilient)\n"


def test_validate_passes_the_library(capsys):
    files = sorted(
        str(p) for folder in ("topologies", "profiles", "chaos/scenarios") for p in (PROJECT / folder).glob("*.yaml")
    )
    assert cli.main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count("valid scenario (topologies: fragile, resilient)") == len(
        list((PROJECT / "chaos/scenarios").glob("*.yaml"))
    )


LOSS = {"at": "5s", "loss": {"from": "dc-west", "to": "dc-east", "percent": 30}, "for": "5s"}


def test_validate_and_run_refuse_a_network_fault_on_a_runtime_without_network_control(tmp_path, capsys):
    lossy = write(tmp_path, "lossy.yaml", [LOSS])
    assert cli.main(["validate", str(lossy)]) == 0  # the runtime is not known: it may run on netns
    assert cli.main(["validate", str(lossy), "--runtime", "netns"]) == 0
    assert "runtime: netns" in capsys.readouterr().out
    assert cli.main(["validate", str(lossy), "--runtime", "local"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"blackout: {lossy}: field 'timeline.0.loss': the local runtime cannot do loss")
    runs = tmp_path / "runs"
    assert cli.main(["run", str(lossy), "--runtime", "local", "--runs", str(runs)]) == 2  # before anything starts
    assert "the local runtime cannot do loss" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())
