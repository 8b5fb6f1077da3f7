"""The room's shared pieces on one stack: the current exercise, the chart reader, the instance probe. Shared by
the room's routes (chaos/workshop/routes.py) and the game master's console (chaos/workshop/console.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import HTTPException

from chaos.controller import Controller
from chaos.workshop.exercise import Exercise
from chaos.workshop.probe import InstanceProbe
from chaos.workshop.window import RequestWindow


class Desk:
    """The room's shared pieces: the current exercise (one per stack), the chart reader, the probe."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.exercise: Exercise | None = None
        self.board: Path | None = None
        self.window = RequestWindow()
        self.probe = InstanceProbe(controller.runtime)
        self.lock = threading.Lock()

    def current(self) -> Exercise:
        if self.exercise is None:
            raise HTTPException(status_code=404, detail="no exercise on this stack: `blackout exercise start`")
        return self.exercise
