"""The event bus as server-sent events, without a worker thread per client.

Each stream waits on the server's event loop, never in Starlette's threadpool: the sync routes share that
pool (40 threads), and idle streams holding it once left /panic unanswered. sse-starlette pings the client
and ends the stream when the client goes; at most ``limit`` streams are open at once (503 beyond).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import HTTPException
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from chaos.events import QUEUE_SIZE, EventBus

MAX_STREAMS = 200  # every open stream costs a socket and a queue; the kill switch answers regardless
PING_S = 15.0
SHUTDOWN_POLL_S = 1.0  # how soon a stream notices the control API's shutdown event
RETRY_AFTER_S = 5


class LoopSink:
    """Hands the events published by any thread to one stream waiting on the event loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)

    def put_nowait(self, item: dict[str, Any]) -> None:
        try:
            self._loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:
            pass  # the loop is closed: the server has stopped

    def _put(self, item: dict[str, Any]) -> None:
        if not self.queue.full():  # a stalled reader loses events rather than holding the publisher back
            self.queue.put_nowait(item)


class StreamGate:
    """Counts the open streams and refuses one more than ``limit`` with a 503 that says why."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.open >= self.limit:
                raise HTTPException(
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                    detail=f"{self.limit} event streams are open already: close one, retry later",
                )
            self.open += 1

    def leave(self) -> None:
        with self._lock:
            self.open -= 1


class _Subscription:
    def __init__(self, bus: EventBus, gate: StreamGate) -> None:
        gate.enter()
        self.bus, self.gate, self.sink = bus, gate, LoopSink()
        self._closed = False
        bus.attach(self.sink)

    def close(self) -> None:
        """Idempotent: called when the stream ends and again after the response (a stream never started)."""
        if not self._closed:
            self._closed = True
            self.bus.unsubscribe(self.sink)
            self.gate.leave()


def event_stream(
    bus: EventBus,
    shutdown: threading.Event,
    gate: StreamGate,
    comment: str,
    shown: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda event: event,
) -> EventSourceResponse:
    """The bus's events (the recent past first), each as ``shown`` makes it (None: left out)."""
    subscription = _Subscription(bus, gate)

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(comment=comment)
            while not shutdown.is_set():
                try:
                    event = await asyncio.wait_for(subscription.sink.queue.get(), SHUTDOWN_POLL_S)
                except TimeoutError:
                    continue
                out = shown(event)
                if out is not None:
                    yield ServerSentEvent(data=json.dumps(out, default=str), event=out.get("event", "message"))
        finally:
            subscription.close()

    return EventSourceResponse(events(), ping=PING_S, background=BackgroundTask(subscription.close))
