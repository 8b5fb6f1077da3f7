"""A run's end, movable while it runs: a game master extends a team's round. The scenario's duration is the plan;
the extension is added to it wherever the run's end is read, every tick (the walk) or on every change (the users'
load generator, told through ``on_extend``), so the users and a held fault keep going until the new end."""

from __future__ import annotations

import threading
from collections.abc import Callable

MAX_EXTENSION_S = 3600.0  # a run is extended by at most this much in all: an hour more of a round is a new round


class Extension:
    """The seconds added to a run's planned duration so far (0 until someone extends it)."""

    def __init__(self) -> None:
        self._seconds = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float], None]] = []

    @property
    def seconds(self) -> float:
        return self._seconds

    def on_extend(self, listener: Callable[[float], None]) -> None:
        """``listener(total)`` after every extension, with the seconds added in all."""
        with self._lock:
            self._listeners.append(listener)

    def extend(self, seconds: float) -> float:
        """Add ``seconds`` (> 0); the total added. ValueError past MAX_EXTENSION_S in all."""
        if not seconds > 0:
            raise ValueError(f"extend by a positive number of seconds, got {seconds!r}")
        with self._lock:
            if self._seconds + seconds > MAX_EXTENSION_S:
                raise ValueError(
                    f"a run is extended by at most {MAX_EXTENSION_S:g}s in all; {self._seconds:g}s already"
                )
            self._seconds += seconds
            total, listeners = self._seconds, list(self._listeners)
        for listener in listeners:
            listener(total)
        return total
