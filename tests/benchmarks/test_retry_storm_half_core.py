"""retry-storm on a slow machine (the stack capped at half a core, calibrated so): the naive stack is steady before
the auth stall and never comes back after it; the resilient one comes back within the scenario's goal. Through the
benchmark's own path: a real calibration, real runs, their journals."""

from __future__ import annotations

from pathlib import Path

import pytest
import retry_storm
from support import cpu_share


@pytest.mark.long
@pytest.mark.timeout(1200)  # a calibration and two runs on a capped stack: 5-10 minutes
@pytest.mark.skipif(not cpu_share.available(), reason="needs root and a cgroup cpu controller")
def test_on_half_a_core_naive_stays_down_and_resilient_recovers(tmp_path: Path) -> None:
    with cpu_share.cpu_share(0.5) as share:
        result = retry_storm.run([1], tmp_path, share)
    assert result["login_capacity_per_s"] > 0  # the users were sized to the capped stack's logins
    runs = {r["profile"]: r for r in result["runs"]}
    naive, resilient = runs["naive"], runs["resilient"]
    assert not retry_storm._down_before(naive), naive["reasons"]  # steady before the trigger: the lesson's premise
    assert naive["recovered_after_s"] is None, naive["reasons"]
    assert resilient["recovered_after_s"] is not None, resilient["reasons"]
    assert resilient["recovered_after_s"] <= result["recovered_within_s"]
