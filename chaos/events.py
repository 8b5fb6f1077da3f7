"""In-process publish/subscribe of the run's events (power, faults, hypothesis): what the control API streams."""
from __future__ import annotations

import queue
import threading
from collections import deque

HISTORY = 200  # a new subscriber first gets the recent past


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[queue.Queue] = []
        self._history: deque[dict] = deque(maxlen=HISTORY)
        self._lock = threading.Lock()

    def publish(self, event: dict) -> None:
        with self._lock:
            self._history.append(event)
            subscribers = list(self._subscribers)
        for q in subscribers:
            try:
                q.put_nowait(event)
            except queue.Full:
                pass  # a stalled reader loses events rather than holding the run back

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=1000)
        with self._lock:
            for event in self._history:
                q.put_nowait(event)
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)
