"""A real Controller over a runtime that records what it was asked: the control API with no processes."""

from __future__ import annotations

import random
from pathlib import Path

from fakes.runtime import RecordingRuntime

from chaos.controller import Controller
from chaos.events import EventBus
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from services.common.policy import Profile


def recording_controller(runs_root: Path) -> Controller:
    runtime, bus = RecordingRuntime(), EventBus()
    journal = Journal(runs_root, bus)
    injector = FaultInjector(runtime, journal, random.Random(1), profile=Profile(name="naive"))
    return Controller(runtime, injector, journal, bus, runs_root)
