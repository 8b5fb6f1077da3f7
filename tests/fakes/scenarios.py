"""Short variants of library scenarios for end-to-end tests: scenarios are data, so a test writes its own."""

from __future__ import annotations

from pathlib import Path

import yaml

from chaos.engine.scenario import LIBRARY


def variant(tmp_path: Path, name: str, **changes: object) -> Path:
    """The library scenario ``name`` with top-level fields replaced, written under ``tmp_path``. Its held round
    (``hold``) is dropped unless given: the card's held timeline is timed for the library's, not the variant's."""
    data = yaml.safe_load((LIBRARY / f"{name}.yaml").read_text())
    data.pop("hold", None)
    data.update(changes)
    tmp_path.mkdir(parents=True, exist_ok=True)  # e.g. a stack's own library, <runs>/scenarios
    path = tmp_path / f"{name}-short.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def short_power_loss(tmp_path: Path, off_at: int = 6, on_at: int = 16, duration: int = 26, users: int = 10) -> Path:
    return variant(
        tmp_path,
        "dc-power-loss",
        load={"users": users, "spawn_rate": 10},
        duration=f"{duration}s",
        timeline=[{"at": f"{off_at}s", "power_off": "dc-east"}, {"at": f"{on_at}s", "power_on": "dc-east"}],
        hold={
            "broken": "dc-east stays dark",
            "timeline": [{"at": f"{off_at}s", "power_off": "dc-east"}],
            "cleared_by": [{"power_on": "dc-east"}],
        },
        hypothesis={
            "window": "5s",
            "min_requests": 5,
            "recovered_within": f"{duration - on_at - 2}s",
            "probes": [
                {"success_rate": {"action": "feed", "min": 0.9}},
                {"symptom": {"name": "zero_view_displays", "max": 0}},
            ],
        },
    )


def unshipped_power_loss(tmp_path: Path, users: int = 10, duration: int = 55) -> Path:
    """dc-east's views stop reaching dc-west (a stalled replication link) from the start, then dc-east
    loses power with ~25 s of acknowledged views unshipped: what each replication design does with them.
    (A long window: on a loaded machine the users' first views may come many seconds into the run.)"""
    return variant(
        tmp_path,
        "dc-power-loss",
        load={"users": users},
        duration=f"{duration}s",
        timeline=[
            {"at": "1s", "blackhole": {"from": "views-east", "to": "views-west"}, "for": "28s"},
            {"at": "26s", "power_off": "dc-east"},
            {"at": "36s", "power_on": "dc-east"},
        ],
        hypothesis={
            "window": "5s",
            "min_requests": 5,
            "recovered_within": f"{duration - 38}s",
            "probes": [{"success_rate": {"action": "feed", "min": 0.9}}],
        },
    )
