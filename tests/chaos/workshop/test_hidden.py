"""The hidden fault: drawn by the seed, pushed later by the onset, written where only the instructor looks."""

from __future__ import annotations

import pytest
import yaml
from fakes.scenarios import variant

from chaos.engine.scenario import LIBRARY, library_names, load_scenario
from chaos.library import LOCAL_SCENARIOS
from chaos.workshop.config import ExerciseConfig, load_config
from chaos.workshop.hidden import draw
from services.common.errors import ConfigError


def test_the_same_seed_draws_the_same_scenario_and_moment(tmp_path):
    config = ExerciseConfig(onset={"min": "5s", "max": "40s"})
    first, again = draw(config, 11, tmp_path / "a"), draw(config, 11, tmp_path / "b")
    assert (first.scenario, first.offset_s) == (again.scenario, again.offset_s)
    assert first.scenario in library_names() and 5 <= first.offset_s <= 40
    draws = {(d.scenario, d.offset_s) for d in (draw(config, seed, tmp_path / str(seed)) for seed in range(12))}
    assert len(draws) > 3  # the seed matters


def test_the_timeline_moves_by_the_offset_and_the_file_hides_the_name(tmp_path):
    hidden = draw(ExerciseConfig(scenario="brownout", seed=3), 3, tmp_path)
    original, shifted = load_scenario("brownout"), load_scenario(hidden.path)
    assert shifted.name == "exercise"  # the run directory and status say "exercise", not "brownout"
    assert shifted.duration == pytest.approx(original.duration + hidden.offset_s)
    assert [at for at, _ in shifted.steps()] == [pytest.approx(at + hidden.offset_s) for at, _ in original.steps()]
    assert hidden.targets == ["views-east"] and hidden.first_fault_s == pytest.approx(20 + hidden.offset_s)
    assert oct((tmp_path / "exercise.yaml").stat().st_mode & 0o777) == "0o600"


def test_hold_leaves_healing_to_the_team_and_round_stretches_the_load(tmp_path):
    hidden = draw(ExerciseConfig(scenario="dc-power-loss", hold=True, round="5m"), 1, tmp_path)
    data = yaml.safe_load(open(hidden.path))
    assert [list(step) for step in data["timeline"]] == [["at", "power_off"]]  # no power_on: the team restores it
    assert data["duration"] == "300s" and "recovered_within" not in data["hypothesis"]
    brownout = yaml.safe_load(open(draw(ExerciseConfig(scenario="brownout", hold=True), 1, tmp_path / "b").path))
    assert "for" not in brownout["timeline"][0]


def test_bad_choices_are_refused_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match="unknown; scenarios: brownout"):
        draw(ExerciseConfig(scenario="meteor-strike"), 1, tmp_path)
    bad = tmp_path / "ex.yaml"
    bad.write_text("allow: [power-on, reboot-the-internet]\nonset: {min: 30s, max: 10s}\n")
    with pytest.raises(ConfigError) as error:
        load_config(bad)
    assert "allow.1" in str(error.value) and "onset" in str(error.value) and str(bad) in str(error.value)
    with pytest.raises(ConfigError, match="team"):
        load_config(None, team="Team Red!")


def test_an_uncalibrated_machine_never_draws_a_scenario_sized_to_its_capacity(tmp_path):
    needs = [n for n in library_names() if load_scenario(n).load.capacity is not None]
    assert needs  # retry-storm is sized to the machine
    runs = tmp_path / "runs" / "teams" / "red"
    drawn = {draw(ExerciseConfig(), seed, tmp_path / str(seed), runs).scenario for seed in range(40)}
    assert not drawn & set(needs) and len(drawn) > 3
    # once the machine is calibrated (the workshop's runs folder, above the team's), every scenario can come
    runs.mkdir(parents=True)
    (tmp_path / "runs" / "calibration.json").write_text("{}")
    drawn = {draw(ExerciseConfig(), seed, tmp_path / f"c{seed}", runs).scenario for seed in range(40)}
    assert drawn & set(needs)


def test_the_instructors_users_replace_a_scenarios_sizing(tmp_path):
    hidden = draw(ExerciseConfig(scenario="retry-storm", users=30), 1, tmp_path)
    load = load_scenario(hidden.path).load
    assert (load.users, load.capacity) == (30, None)


def test_a_held_round_plays_its_own_load_when_the_card_gives_one(tmp_path):
    runs = tmp_path / "runs"
    hold = load_scenario("retry-storm").model_dump(mode="json", exclude_none=True)["hold"]
    card = variant(runs / LOCAL_SCENARIOS, "retry-storm", hold={**hold, "load": {"capacity": 3, "of": "logins"}}).stem
    held = load_scenario(draw(ExerciseConfig(scenario=card, hold=True), 1, tmp_path / "h", runs).path).load
    unheld = load_scenario(draw(ExerciseConfig(scenario=card), 1, tmp_path / "u", runs).path).load
    assert (held.capacity, held.of) == (3, "logins") and unheld == load_scenario("retry-storm").load
    chosen = draw(ExerciseConfig(scenario=card, hold=True, users=12), 1, tmp_path / "c", runs)
    assert load_scenario(chosen.path).load.users == 12  # the instructor's number still wins
    brownout = load_scenario(draw(ExerciseConfig(scenario="brownout", hold=True), 1, tmp_path / "b").path)
    assert brownout.load == load_scenario("brownout").load  # no held load: the scenario's
    # the library's retry-storm, held, plays its own sizing: 5x the calibrated logins
    storm = load_scenario(draw(ExerciseConfig(scenario="retry-storm", hold=True), 1, tmp_path / "s").path)
    assert storm.load == load_scenario("retry-storm").load and storm.load.of == "logins"


def test_a_held_load_is_validated_with_the_scenario(tmp_path):
    path = variant(tmp_path, "retry-storm", hold={**load_scenario("retry-storm").model_dump(mode="json")["hold"]})
    data = yaml.safe_load(path.read_text())
    data["hold"]["load"] = {"users": 5, "capacity": 0.1}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="hold.load"):
        load_scenario(path)


def test_a_control_round_has_no_fault_and_is_drawn_only_when_asked(tmp_path):
    control = draw(ExerciseConfig(scenario="dc-power-loss", control=1), 1, tmp_path / "c")
    steps = load_scenario(control.path).steps()
    assert (
        control.control and control.targets == [] and control.fault_types == [] and control.title.startswith("no fault")
    )
    assert [a.kind for _, a in steps] == ["latency"] and steps[0][1].spec.ms == 1  # users cannot tell 1 ms
    assert control.card is not None and control.card["answer"] is None and len(control.card["hints"]) == 3
    never = [draw(ExerciseConfig(scenario="dc-power-loss"), seed, tmp_path / f"n{seed}").control for seed in range(20)]
    sometimes = [
        draw(ExerciseConfig(scenario="dc-power-loss", control=0.5), seed, tmp_path / f"s{seed}").control
        for seed in range(20)
    ]
    assert not any(never) and 3 <= sum(sometimes) <= 17
    fault = draw(ExerciseConfig(scenario="dc-power-loss"), 1, tmp_path / "f")
    assert fault.fault_types == ["power-loss"] and fault.card["answer"]["where"] == "dc-east"
    assert fault.round_s == pytest.approx(80 + fault.offset_s)


def test_a_held_round_plays_the_cards_held_timeline_and_names_its_levers(tmp_path):
    hidden = draw(ExerciseConfig(scenario="flapping-generator", hold=True), 1, tmp_path)
    played = yaml.safe_load(open(hidden.path))
    assert [list(step)[-1] for step in played["timeline"]] == ["flap"] and "hold" not in played
    assert played["timeline"][0]["flap"]["times"] == 20  # it keeps flapping: four flaps would heal by themselves
    assert hidden.cleared_by == [{"power_on": "dc-east"}] and "flapping" in hidden.held


def test_a_held_round_of_a_scenario_without_a_hold_is_refused_naming_the_field(tmp_path):
    data = yaml.safe_load((LIBRARY / "brownout.yaml").read_text())
    del data["hold"]
    (tmp_path / LOCAL_SCENARIOS).mkdir()
    (tmp_path / LOCAL_SCENARIOS / "mine.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="mine.yaml: field 'hold'"):
        draw(ExerciseConfig(scenario="mine", hold=True), 1, tmp_path / "out", tmp_path)
