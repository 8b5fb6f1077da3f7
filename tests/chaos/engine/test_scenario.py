"""Scenario files are validated completely before anything starts; errors name the file and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chaos.engine.scenario import LIBRARY, library, library_names, load_scenario, parse_scenario
from chaos.faults.actions import KINDS
from chaos.faults.fault_types import fault_type
from chaos.workshop.config import REMEDIATIONS
from services.common.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[3]
REQUIRED = {
    "dc-power-loss",
    "flapping-generator",
    "wrong-boot-order",
    "brownout",
    "partition",
    "retry-storm",
    "single-instance-kill",
}


def base() -> dict:
    return yaml.safe_load((LIBRARY / "dc-power-loss.yaml").read_text())


def test_the_library_has_every_scenario_each_with_what_it_teaches():
    assert REQUIRED <= set(library_names())
    for scenario in library():
        assert 2 <= len(scenario.learn.strip().splitlines()) <= 6, scenario.name
        assert scenario.steps()


def test_every_library_scenario_carries_a_card_that_agrees_with_its_timeline():
    for scenario in library():
        card = scenario.card
        assert card is not None and len(card.hints) == 3 and card.look_for and card.debrief, scenario.name
        faults = [action for _, action in scenario.steps() if KINDS[action.kind].fault]
        assert card.answer.fault in {fault_type(a.kind) for a in faults}, scenario.name
        targets = {name for a in faults for _, name, _ in KINDS[a.kind].targets(a.spec)}
        assert card.answer.where in targets, scenario.name
        assert card.answer.detect_s <= card.answer.mitigate_s, scenario.name


def test_every_cards_model_answer_pulls_the_levers_its_held_round_is_cleared_by():
    """A held round is the workshop's default: the model answer a team reads in its draft names the levers, as a
    team types them, that clear the held fault (hold.cleared_by), in that order."""
    words = {kind: word for word, kind in REMEDIATIONS.items()}
    for scenario in library():
        assert scenario.card is not None and scenario.hold is not None, scenario.name
        actions = " ".join(scenario.card.answer.actions)
        at = 0
        for lever in scenario.hold.cleared_by:
            (kind, target), *_ = lever.items()
            named = target if isinstance(target, str) else target.get("dc") or target.get("profile")
            said = f"{words[kind]} {named}"
            assert said in actions[at:], f"{scenario.name}: the card's actions never say {said!r}: {actions}"
            at = actions.index(said, at)


def test_a_name_outside_the_library_lists_the_library():
    with pytest.raises(ConfigError, match="scenarios: brownout, dc-power-loss"):
        load_scenario("meteor-strike")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("learn"), "field 'learn'"),
        (lambda d: d.update(colour="red"), "field 'colour'"),
        (lambda d: d["load"].update(users=0), "field 'load.users'"),
        (lambda d: d["load"].update(think_s=[15, 5]), "field 'load.think_s'"),
        (lambda d: d["load"].update(think_s=[5]), "field 'load.think_s.1'"),
        (lambda d: d["hypothesis"]["probes"].append({"success_rate": {"min": 2}}), "probes.3.success_rate.min"),
        (
            lambda d: d["hypothesis"]["probes"].append({"p99": {"max_ms": 1}, "symptom": {"name": "x", "max": 1}}),
            "probes.3",
        ),
        (lambda d: d["timeline"].append({"at": "10s"}), "field 'timeline.2': give exactly one action"),
        (lambda d: d["timeline"].append({"power_off": "dc-east"}), "field 'timeline.2.at'"),
        (lambda d: d["timeline"].append({"at": "soon", "power_off": "dc-east"}), "field 'timeline.2.at'"),
        (lambda d: d["timeline"].append({"at": "500s", "power_off": "dc-east"}), "not before the end"),
        (lambda d: d["timeline"].append({"at": "1s", "meteor": "dc-east"}), "unknown action 'meteor'"),
        (
            lambda d: d["timeline"].append({"at": "1s", "latency": {"from": "dc-west", "to": "dc-east"}}),
            "field 'timeline.2.latency.ms'",
        ),
        (
            lambda d: d["timeline"].append({"at": "1s", "power_on": "dc-east", "for": "3s"}),
            "field 'timeline.2.for': power_on cannot be reverted",
        ),
        (
            lambda d: d["timeline"].append({"at": "70s", "partition": ["dc-east", "dc-west"], "for": "20s"}),
            "field 'timeline.2.for'",
        ),
        (lambda d: d.update(duration="55s"), "field 'duration'"),
        (lambda d: d["card"]["hints"].pop(), "field 'card.hints'"),
        (lambda d: d["card"].pop("answer"), "field 'card.answer'"),
        (lambda d: d["card"]["answer"].update(fault="gremlins"), "field 'card.answer.fault'"),
        (lambda d: d["card"]["answer"].update(symptom="sadness"), "field 'card.answer.symptom'"),
        (lambda d: d["card"]["answer"].update(detect_s="soon"), "field 'card.answer.detect_s'"),
        (lambda d: d["card"].update(colour="red"), "field 'card.colour'"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_field(change, field):
    data = base()
    change(data)
    with pytest.raises(ConfigError) as err:
        parse_scenario(data, "bad.yaml")
    assert str(err.value).startswith("bad.yaml: ") and field in str(err.value)


def test_a_scenario_may_set_how_long_its_users_think():
    data = base()
    data["load"]["think_s"] = [5, 15]
    assert parse_scenario(data, "viewers.yaml").load.think_s == (5.0, 15.0)
    assert parse_scenario(base(), "demo.yaml").load.think_s is None  # the demo's pace


def test_yaml_booleans_do_not_sneak_in_as_field_names():
    data = base()
    data["timeline"] = [{"at": "1s", "flap": yaml.safe_load("{dc: dc-east, times: 2, off: 1s, on: 1s}")}]
    with pytest.raises(ConfigError, match="flap.off_for"):
        parse_scenario(data, "bad.yaml")


def test_the_cli_refuses_a_bad_scenario_with_exit_2_and_no_traceback(tmp_path):
    data = base()
    data["timeline"][0]["at"] = "-3s"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    for command in (["validate", str(bad)], ["run", str(bad), "--runs", str(tmp_path / "runs")]):
        result = subprocess.run(
            [sys.executable, "-m", "chaos.cli", *command], capture_output=True, text=True, cwd=PROJECT, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert "bad.yaml" in result.stderr and "timeline.0.at" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything started


@pytest.mark.parametrize("think", ["15-5", "fast", "-1-2", "1-900"])
def test_the_cli_refuses_a_bad_think_time_before_anything_starts(tmp_path, think):
    result = subprocess.run(
        [sys.executable, "-m", "chaos.cli", "run", "dc-power-loss", "--think", think, "--runs", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "--think" in result.stderr and "MIN-MAX" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_think_ranges_read_as_min_max_seconds():
    from chaos.scenario_commands import think

    assert think("5-15") == (5.0, 15.0)
    assert think("2") == (2.0, 2.0)
    assert think("0.5-1.5") == (0.5, 1.5)


def test_every_library_scenario_declares_its_held_round_and_the_levers_that_clear_it():
    for scenario in library():
        assert scenario.hold is not None and scenario.hold.broken and scenario.hold.cleared_by, scenario.name


@pytest.mark.parametrize(
    ("hold", "field", "reason"),
    [
        (
            {"timeline": [{"at": "5s", "power_off": "dc-east"}], "cleared_by": [{"power_on": "dc-east"}]},
            "hold.broken",
            "Field required",
        ),
        (
            {
                "broken": "x",
                "timeline": [{"at": "5s", "power_off": "dc-east"}],
                "cleared_by": [{"power_off": "dc-west"}],
            },
            "hold.cleared_by.0",
            "power_off is not a lever; levers: power_on",
        ),
        (
            {
                "broken": "x",
                "timeline": [{"at": "5s", "power_off": "dc-east"}, {"at": "9s", "power_on": "dc-east"}],
                "cleared_by": [{"power_on": "dc-east"}],
            },
            "hold.timeline.1.power_on",
            "restores no power",
        ),
        (
            {
                "broken": "x",
                "timeline": [{"at": "500s", "power_off": "dc-east"}],
                "cleared_by": [{"power_on": "dc-east"}],
            },
            "hold.timeline.0.at",
            "not before the end of the run",
        ),
        (
            {"broken": "x", "timeline": [{"at": "5s", "power_off": "dc-east"}], "cleared_by": [{"drain": {"dc": "x"}}]},
            "hold.cleared_by.0.drain",
            "",
        ),
    ],
)
def test_a_bad_hold_names_the_file_and_the_field(hold, field, reason):
    with pytest.raises(ConfigError, match=f"my.yaml: field '{field}'.*{reason}"):
        parse_scenario({**base(), "hold": hold}, "my.yaml")
