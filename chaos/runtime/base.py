"""One interface for every runtime: bring a topology up and down, cut and restore a data center's power."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from services.common.errors import BlackoutError


class RuntimeError_(BlackoutError):
    """An instance would not start, or the runtime could not do what it was asked."""


@dataclass(frozen=True)
class PowerEvent:
    dc: str
    action: str  # "off" | "on"
    instances: tuple[str, ...]
    seconds: float  # how long the cut (all processes gone) or the restore (all healthy) took


class Runtime(ABC):
    @abstractmethod
    def up(self) -> None: ...

    @abstractmethod
    def down(self) -> None: ...

    @abstractmethod
    def power_off(self, dc: str) -> PowerEvent: ...

    @abstractmethod
    def power_on(self, dc: str) -> PowerEvent: ...

    @abstractmethod
    def status(self) -> dict[str, dict]:
        """instance -> {"dc", "service", "port", "state": "running" | "powered-off" | "exited", "pid"}."""

    def __enter__(self) -> Runtime:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
