"""The committed dashboards are exactly what grafana/generate.py builds, and they hang together."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_committed_json_equals_the_generator_output(name):
    committed = (GRAFANA / "dashboards" / name).read_text()
    assert committed == generate.render_all()[name], f"run: python grafana/generate.py ({name} is stale)"


def test_check_mode_reports_a_stale_dashboard(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(generate, "DASHBOARDS_DIR", tmp_path)
    assert generate.main([]) == 0 and generate.main(["--check"]) == 0
    (tmp_path / "policies.json").write_text("{}")
    assert generate.main(["--check"]) == 1
    assert "out of date: policies.json" in capsys.readouterr().err


def test_uids_are_fixed_and_every_query_uses_the_provisioned_datasource():
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "blackout.yaml").read_text())[
        "datasources"
    ][0]
    boards = {name: json.loads(text) for name, text in generate.render_all().items()}
    assert {b["uid"] for b in boards.values()} == {"blackout-cascade", "blackout-service", "blackout-policies"}
    for board in boards.values():
        refs = [t["datasource"] for p in board["panels"] for t in p.get("targets", [])]
        refs += [a["datasource"] for a in board["annotations"]["list"]]
        assert refs and all(ref == {"type": "prometheus", "uid": datasource["uid"]} for ref in refs)
        titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
        assert len(titles) == len(set(titles)), "a title names one panel"


def test_the_cascade_shows_power_events_as_annotations():
    cascade = json.loads(generate.render_all()["cascade.json"])
    power = next(a for a in cascade["annotations"]["list"] if a["name"] == "Power off")
    assert power["expr"] == "blackout_dc_power == 0" and power["titleFormat"] == "power off {{dc}}"
