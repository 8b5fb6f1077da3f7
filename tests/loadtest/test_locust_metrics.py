"""What users saw, exported: each requests.csv row also counted per action, data center and outcome."""

from __future__ import annotations

import httpx
import pytest

from loadtest import metrics as user_metrics
from loadtest.records import REQUEST_COLUMNS, CsvRecorder, request_row


def value(metrics: user_metrics.UserMetrics, name: str, labels: dict) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_each_row_is_written_and_counted(tmp_path):
    recorder = user_metrics.exporting(CsvRecorder(tmp_path / "requests.csv", REQUEST_COLUMNS), tmp_path, environ={})
    recorder.write(
        request_row(
            t=1.0, user="u", dc="dc-west", action="feed", ok=1, status=200, latency_ms=120.0, zero_view_displays=3
        )
    )
    recorder.write(request_row(t=2.0, user="u", dc="dc-west", action="feed", ok=0, status=0, latency_ms=10000.0))
    recorder.write(request_row(t=3.0, user="u", dc="dc-east", action="login", ok=0, status=503, latency_ms=5.0))
    recorder.close()
    m = recorder.metrics
    assert len((tmp_path / "requests.csv").read_text().splitlines()) == 4
    assert value(m, "blackout_user_requests_total", {"action": "feed", "dc": "dc-west", "outcome": "ok"}) == 1
    assert value(m, "blackout_user_requests_total", {"action": "feed", "dc": "dc-west", "outcome": "no_answer"}) == 1
    assert value(m, "blackout_user_requests_total", {"action": "login", "dc": "dc-east", "outcome": "error"}) == 1
    assert value(m, "blackout_user_symptoms_total", {"dc": "dc-west", "symptom": "zero_view_displays"}) == 3
    assert value(m, "blackout_user_request_duration_seconds_count", {"action": "feed", "dc": "dc-west"}) == 2
    assert (
        value(m, "blackout_user_request_duration_seconds_bucket", {"action": "feed", "dc": "dc-west", "le": "0.25"})
        == 1
    )


def test_port_zero_is_served_and_the_bound_port_written_to_the_run_directory(tmp_path):
    metrics = user_metrics.UserMetrics()
    port = user_metrics.serve(metrics, tmp_path, 0)
    metrics.observe(request_row(t=1.0, user="u", dc="dc-east", action="view", ok=1, status=200, latency_ms=3.0))
    assert list(user_metrics.bound_ports(tmp_path).values()) == [port]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'blackout_user_requests_total{action="view",dc="dc-east",outcome="ok"} 1.0' in text


@pytest.mark.parametrize("raw", ["ninety", "-1", "70000"])
def test_a_bad_port_stops_the_locustfile_with_one_clear_line(tmp_path, capsys, raw):
    with pytest.raises(SystemExit) as stop:
        user_metrics.exporting(
            CsvRecorder(tmp_path / "r.csv", REQUEST_COLUMNS), tmp_path, environ={user_metrics.PORT_ENV: raw}
        )
    assert stop.value.code == 2
    assert (
        f"BLACKOUT_LOCUST_METRICS_PORT must be a port number (0 for any free port), got {raw!r}"
        in capsys.readouterr().err
    )
