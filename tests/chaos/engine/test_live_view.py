"""The live terminal view: phase, time, faults, and per data center what users saw in the last seconds."""

from __future__ import annotations

from rich.console import Console

from chaos.engine.live_view import view
from loadtest.requests_reader import RequestRow


def test_the_view_shows_each_data_center_and_the_faults_in_force():
    rows = [RequestRow(t=0, dc="dc-east", action="feed", ok=True, latency_ms=12)] * 3
    rows += [RequestRow(t=0, dc="dc-west", action="feed", ok=False, latency_ms=9000)]
    console = Console(record=True, width=100)
    console.print(view("outage", 23, 80, rows, 10, ["power-off-1"], False))
    text = console.export_text()
    assert "outage" in text and "23s / 80s" in text and "deviated" in text and "power-off-1" in text
    east = next(line for line in text.splitlines() if "dc-east" in line)
    west = next(line for line in text.splitlines() if "dc-west" in line)
    assert "3" in east and "100%" in east and "12 ms" in east
    assert "0%" in west and "9000 ms" in west
