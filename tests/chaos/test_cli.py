"""`blackout validate` through the CLI's own entry point: a scenario naming what its topology lacks is refused
with exit 2 and one line naming the file and the field, never a stack trace."""

from __future__ import annotations

import subprocess
import sys
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


def test_validate_refuses_corruption_on_the_local_runtime_naming_the_file_and_the_field(tmp_path, capsys):
    bad = write(tmp_path, "bits.yaml", [{"at": "5s", "corruption": {"from": "dc-west", "to": "dc-east", "percent": 5}}])
    assert cli.main(["validate", str(bad), "--runtime", "netns"]) == 0
    capsys.readouterr()
    assert cli.main(["validate", str(bad), "--runtime", "local"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"blackout: {bad}: field 'timeline.0.corruption': the local runtime cannot do corruption")
    too_much = write(
        tmp_path, "all.yaml", [{"at": "5s", "corruption": {"from": "dc-west", "to": "dc-east", "percent": 101}}]
    )
    assert cli.main(["validate", str(too_much)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"blackout: {too_much}: field 'timeline.0.corruption.percent'") and "Traceback" not in err


def test_run_any_ports_binds_free_ports_and_a_free_prometheus(monkeypatch):
    """A benchmark's runs beside a live demo: `--any-ports` reaches the engine as free ports for every
    instance and for the run's Prometheus (a clash on 8000 or 9090 aborted every run of a matrix)."""
    from chaos import scenario_commands
    from chaos.engine.run import RunOptions, RunResult

    seen: list[RunOptions] = []
    monkeypatch.setattr(
        scenario_commands, "run_scenario", lambda opts: seen.append(opts) or RunResult(Path("r"), False, [])
    )
    assert cli.main(["run", "dc-power-loss", "--any-ports"]) == 0
    assert cli.main(["run", "dc-power-loss"]) == 0
    assert [(o.any_ports, o.prometheus_port) for o in seen] == [(True, 0), (False, 9090)]


def test_run_any_ports_is_refused_off_the_local_runtime(capsys):
    assert cli.main(["run", "dc-power-loss", "--any-ports", "--runtime", "docker"]) == 2
    assert "--any-ports: only the local runtime" in capsys.readouterr().err


def test_a_command_starts_without_scipy_which_only_compare_needs(tmp_path):
    """scipy takes ~1 s of CPU to import (more on a busy machine): every `blackout` command paid it at start, as
    chaos.report_render imported chaos.comparison for two type names. Only `blackout compare` computes with it."""
    probe = (
        "import sys; from chaos import cli; code = cli.main(['status', '--runs', sys.argv[1]]); "
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] == 'scipy')[:3])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "runs")], capture_output=True, text=True, cwd=PROJECT, timeout=60
    )
    assert done.stdout == "1 []\n", (done.stdout, done.stderr)  # 1: nothing running, the command's own answer
