"""In-process publish/subscribe of the run's events (power, faults, hypothesis): what the control API streams."""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Any, Protocol

HISTORY = 200  # a new subscriber first gets the recent past
QUEUE_SIZE = 1000


class Sink(Protocol):
    """Where a subscriber's events go: a queue.Queue, or anything that takes events without blocking."""

    def put_nowait(self, item: dict[str, Any]) -> None: ...


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Sink] = []
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._lock = threading.Lock()

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._history.append(event)
            subscribers = list(self._subscribers)
        for q in subscribers:
            try:
                q.put_nowait(event)
            except queue.Full:
                pass  # a stalled reader loses events rather than holding the run back

    def subscribe(self) -> queue.Queue[dict[str, Any]]:
        q: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=QUEUE_SIZE)
        self.attach(q)
        return q

    def attach(self, sink: Sink) -> None:
        """Send every event to ``sink`` from now on, the recent past first."""
        with self._lock:
            for event in self._history:
                try:
                    sink.put_nowait(event)
                except queue.Full:
                    break
            self._subscribers.append(sink)

    def unsubscribe(self, q: Sink) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)
