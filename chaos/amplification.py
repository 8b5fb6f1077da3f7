"""Retry amplification end to end: every HTTP attempt any service made, per user request.

Headers cannot carry this: when a caller times out it never hears how many attempts its callee made.
So the outage scenario scrapes every running instance's counters at each phase boundary, and a phase's
attempts are the sum of the counters' increases (a restarted instance counts from zero; a dead one
made no attempts). Amplification compares attempts per user request with the baseline's.
"""
from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

OPS_ROUTES = {"/healthz", "/metrics", "/admin/profile", "unmatched"}


def scrape(urls: dict[str, tuple[str, str]]) -> dict[str, dict]:
    """instance -> {"service", "start", "attempts", "requests"} for each (service, url) that answers."""
    found = {}
    with httpx.Client(timeout=1.0) as client:
        for name, (service, url) in urls.items():
            try:
                text = client.get(url + "/metrics").text
            except httpx.HTTPError:
                continue
            values = {"service": service, "start": 0.0, "attempts": 0.0, "requests": 0.0}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "process_start_time_seconds":
                        values["start"] = sample.value
                    elif sample.name == "blackout_dependency_attempts_total":
                        values["attempts"] += sample.value
                    elif sample.name == "blackout_http_requests_total" and sample.labels["route"] not in OPS_ROUTES:
                        values["requests"] += sample.value
            found[name] = values
    return found


def _increase(before: dict[str, dict], after: dict[str, dict], key: str, service: str | None = None) -> float:
    total = 0.0
    for name, now in after.items():
        if service is not None and now["service"] != service:
            continue
        then = before.get(name)
        same_process = then is not None and then["start"] == now["start"]
        total += now[key] - then[key] if same_process else now[key]
    return total


def by_phase(events: list[dict]) -> dict[str, dict]:
    """phase -> {"attempts", "user_requests", "attempts_per_request", "amplification"} from the journal."""
    snapshots = [e for e in events if e.get("event") == "metrics"]
    result: dict[str, dict] = {}
    for before, after in zip(snapshots, snapshots[1:]):
        attempts = _increase(before["instances"], after["instances"], "attempts")
        requests = _increase(before["instances"], after["instances"], "requests", service="gateway")
        result[before["phase"]] = {
            "attempts": int(attempts),
            "user_requests": int(requests),
            "attempts_per_request": attempts / requests if requests else None,
        }
    base = result.get("baseline", {}).get("attempts_per_request")
    for numbers in result.values():
        per = numbers["attempts_per_request"]
        numbers["amplification"] = per / base if per is not None and base else None
    return result
