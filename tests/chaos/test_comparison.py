"""Groups of runs compared with intervals: the statistics, and `blackout compare` on real runs."""

from __future__ import annotations

import pytest

from chaos.cli import main
from chaos.comparison import compare_values, estimate


def test_an_interval_holds_the_mean_and_narrows_with_more_runs():
    few, many = estimate([0.90, 0.96, 0.93]), estimate([0.90, 0.96, 0.93] * 4)
    assert few.low < few.mean < few.high and many.low < many.mean < many.high
    assert many.mean == pytest.approx(few.mean)
    assert (many.high - many.low) < (few.high - few.low)


def test_one_run_has_a_mean_but_no_interval_and_no_test():
    row = compare_values("outage: success", [0.9], [0.99])
    assert row.a.mean == 0.9 and row.a.low is None and row.p_value is None and not row.significant


def test_groups_apart_beyond_their_noise_differ_significantly():
    assert compare_values("p99", [4100.0, 4400.0, 4800.0], [400.0, 450.0, 520.0]).significant


def test_groups_within_their_noise_do_not():
    row = compare_values("p99", [400.0, 900.0, 520.0], [450.0, 800.0, 610.0])
    assert row.p_value > 0.05 and not row.significant


def test_groups_without_any_spread_differ_exactly_when_their_values_do():
    assert compare_values("zero-view", [0.0, 0.0, 0.0], [3.0, 3.0, 3.0]).significant
    assert not compare_values("zero-view", [0.0, 0.0], [0.0, 0.0]).significant


def test_compare_prints_each_figure_of_real_runs_per_group(naive_run, resilient_run, capsys):
    assert main(["compare", str(naive_run), str(naive_run), "--against", str(resilient_run)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "outage: zero-view displays" in line)
    naive, resilient = (cell.strip() for cell in row.split("│")[2:4])
    assert naive.endswith("(n=2)") and resilient.endswith("(n=1)")
    # the naive runs lied about views; the resilient one never did
    assert float(naive.split()[0]) > 0 == float(resilient.split()[0])


def test_compare_refuses_a_folder_that_is_not_a_finished_run(tmp_path, capsys):
    assert main(["compare", str(tmp_path), "--against", str(tmp_path)]) == 2
    assert "journal.json is missing" in capsys.readouterr().err
