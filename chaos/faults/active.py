"""A fault in force: what was done, when, and how to undo it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos.faults.model import ActionBase
from chaos.runtime.base import PowerEvent


@dataclass(eq=False)  # one instance is one fault: a later fault reusing its id is another
class ActiveFault:
    id: str
    action: ActionBase
    started: float  # time.time()
    undo: Callable[[], dict[str, Any]]
    output: dict[str, Any] = field(default_factory=dict)
    reverting: bool = False  # its undo is running: it stays listed (and its id taken) until that succeeds

    def to_data(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action.to_data(), "started": self.started, "output": self.output}


def event_output(event: PowerEvent) -> dict[str, Any]:
    return {
        "dc": event.dc,
        "action": event.action,
        "instances": list(event.instances),
        "seconds": event.seconds,
        "healthy": event.healthy,
        "detail": event.detail,
    }
