"""The control API of a running stack: loopback only, and every call needs the run's token (401 without it).

`blackout up` and every scenario run serve it; `blackout status/power-off/power-on/fault/panic/down` are its
clients; `GET /events` streams power, fault and hypothesis events (server-sent events) to a web page.
OpenAPI at /docs (behind the token too: in a browser, open /room?token=... first). During an exercise a
team's code reaches the control room and its exercise only (chaos/workshop/auth.py). Files are named by
library name only (chaos/library.py), and the kill switch (/panic, /status, /shutdown) answers whatever
the event streams and the other calls are doing.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import uvicorn
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from chaos.control_client import CONTROL_FILE, publish, read_control
from chaos.controller import Controller
from chaos.event_stream import MAX_STREAMS, StreamGate, event_stream
from chaos.guarded import guarded
from chaos.library import profile_named, scenario_file
from chaos.workshop.auth import Keys, Role, forged, may
from chaos.workshop.routes import workshop_router
from services.common.errors import BlackoutError, UsageError
from services.common.policy import LIBRARY_NAME, parse_profile

START_TIMEOUT_S = 10.0
KILL_SWITCH_THREADS = 4
POWER = {"off": "power_off", "on": "power_on"}  # /power/{dc}/{action}: the URL's word -> the action kind
T = TypeVar("T")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(pattern=LIBRARY_NAME, description="a scenario of the library (GET /scenarios), by name")
    profile: str | None = Field(None, pattern=LIBRARY_NAME, description="a profile of profiles/, by name")
    seed: int | None = None
    users: int | None = Field(None, ge=1, le=100_000)


class KillSwitch:
    """A few threads of the kill switch's own (/panic, /status): the shared threadpool may be taken by slow
    calls (DELETE /runs/current waits for a run's end) and the kill switch must answer anyway."""

    def __init__(self) -> None:
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, action: Callable[[], T]) -> T:
        if self._limiter is None:  # made on the server's event loop, at the first call
            self._limiter = anyio.CapacityLimiter(KILL_SWITCH_THREADS)
        return await anyio.to_thread.run_sync(action, limiter=self._limiter)


class TokenGate:
    """Every call needs a token, checked before anything else is read: a call without one learns nothing
    (not even what its body lacks) and waits for no thread. The control token reaches every route; a team's
    code only the room and its exercise, a watcher's the room read-only (403 elsewhere). A change made with a
    room cookie must also come from the room's own page. The role found is left in the request's state for the routes."""

    def __init__(self, app: ASGIApp, keys: Keys, control_address: tuple[str, int] | None = None) -> None:
        self.app, self.keys, self.control_address = app, keys, control_address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            role = self.keys.role(request)
            detail: str | None
            if role is None:
                detail, status = (
                    "a valid control token is required (see runs/.control.json), or a team's code from its link",
                    401,
                )
            elif role is Role.INSTRUCTOR and not self._on_control_socket(scope):
                detail, status = (
                    "this is the team rooms' address: the control token works on the control API's own "
                    "(127.0.0.1) address only",
                    403,
                )
            elif not may(role, request.method, request.url.path):
                reaches = (
                    "a team's code reaches the control room, GET /exercise, detect, act, hint, ack, roles and "
                    "status updates only"
                    if role is Role.TEAM
                    else "a watcher's code reaches the control room and GET /exercise only, read-only"
                )
                detail, status = f"{reaches}: {request.method} {request.url.path} is the instructor's", 403
            else:
                detail, status = forged(request), 403
            if detail is not None:
                await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
                return
            scope.setdefault("state", {})["role"] = role
        await self.app(scope, receive, send)

    def _on_control_socket(self, scope: Scope) -> bool:
        """Whether the call came in on the loopback control socket, not on the team rooms' (``--room-bind``):
        with no room socket there is only one."""
        server = scope.get("server")
        return self.control_address is None or (server is not None and tuple(server) == self.control_address)


def create_control_app(
    controller: Controller,
    token: str,
    shutdown: threading.Event,
    max_streams: int = MAX_STREAMS,
    control_address: tuple[str, int] | None = None,
) -> FastAPI:
    """``control_address``: the loopback socket the control token is taken on when the app also serves the team
    rooms on another address (``blackout up --room-bind``); there, team codes only."""
    gate = StreamGate(max_streams)  # /events and /room/events together
    kill_switch = KillSwitch()
    keys = Keys(token)
    app = FastAPI(title="blackout-control")
    app.add_middleware(TokenGate, keys=keys, control_address=control_address)
    app.include_router(workshop_router(controller, shutdown, gate, keys))  # the control room and the exercise

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return await kill_switch.run(controller.status)

    @app.get("/scenarios")
    def scenarios() -> list[dict[str, Any]]:
        return controller.scenarios()

    @app.post("/power/{dc}/{action}")
    def power(dc: str, action: str) -> dict[str, Any]:
        if action not in POWER:
            raise HTTPException(status_code=404, detail=f"unknown action '{action}': use off or on")
        return guarded(lambda: controller.power(dc, POWER[action]))

    @app.get("/faults")
    def faults() -> list[dict[str, Any]]:
        return [f.to_data() for f in controller.injector.active()]

    @app.post("/faults")
    def inject(
        body: dict[str, Any] = Body(
            ..., examples=[{"latency": {"from": "dc-west", "to": "dc-east", "ms": 300}, "for": "20s"}]
        ),
    ) -> dict[str, Any]:
        return guarded(lambda: controller.inject(body))

    @app.delete("/faults/{fault_id}")
    def remove(fault_id: str) -> dict[str, Any]:
        return guarded(lambda: controller.remove(fault_id))

    @app.post("/panic")
    async def panic() -> dict[str, Any]:
        return await kill_switch.run(lambda: guarded(controller.panic))

    @app.put("/profile")
    def profile(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        def switch() -> dict[str, Any]:
            chosen = parse_profile(body, "PUT /profile")
            return {"profile": chosen.name, "instances": controller.switch_profile(chosen)}

        return guarded(switch)

    @app.post("/runs", status_code=202)
    def start_run(request: RunRequest) -> dict[str, Any]:
        def start() -> dict[str, Any]:
            scenario = scenario_file(request.scenario, controller.runs_root)
            profile = profile_named(request.profile) if request.profile else None
            return controller.start_run(scenario, profile, request.seed, request.users)

        return guarded(start)

    @app.get("/runs/current")
    def current_run() -> dict[str, Any]:
        return controller.run_state()

    @app.delete("/runs/current")
    def stop_run() -> dict[str, Any]:
        return {"stopped": controller.stop_run(wait=True), **controller.run_state()}

    @app.get("/events")
    async def events() -> EventSourceResponse:
        return event_stream(controller.bus, shutdown, gate, "blackout events")

    @app.post("/shutdown")
    async def stop() -> dict[str, Any]:
        shutdown.set()
        return {"stopping": True}

    return app


class ControlServer:
    """Serves the control API from a thread of the supervisor (or run) process."""

    def __init__(self, controller: Controller, runs_root: Path, run_dir: Path, room_bind: str | None = None) -> None:
        self.token = secrets.token_urlsafe(24)
        self.shutdown = threading.Event()
        self.file = runs_root / CONTROL_FILE
        self.run_dir = run_dir
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))  # loopback only, any free port
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        # The team rooms on another address (a LAN's), a socket of their own: there the gate takes team codes
        # only, so the control API itself never leaves the loopback (docs/workshop.md: the risks).
        self._room_sock = room_socket(room_bind) if room_bind else None
        self.room_url = self.url if self._room_sock is None else url_of(self._room_sock)
        sockets = [self._sock] if self._room_sock is None else [self._sock, self._room_sock]
        control_address = None if self._room_sock is None else ("127.0.0.1", port)
        app = create_control_app(controller, self.token, self.shutdown, control_address=control_address)
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": sockets}, daemon=True)
        self.published = False  # whether clients find this server through the control file

    def start(self) -> None:
        """Serve, and only once it answers write the control file clients look for."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise BlackoutError(f"the control API did not start on {self.url}")
            time.sleep(0.02)  # poll interval
        info = {
            "url": self.url,
            "room_url": self.room_url,
            "token": self.token,
            "pid": os.getpid(),
            "run_dir": str(self.run_dir),
        }
        self.published = publish(self.file, info)

    def stop(self) -> None:
        owner = read_control(self.file)
        if self.published and owner is not None and (owner.get("pid"), owner.get("url")) == (os.getpid(), self.url):
            self.file.unlink(missing_ok=True)  # only our own: a newer server's file stays
        self.shutdown.set()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._sock.close()
        if self._room_sock is not None:
            self._room_sock.close()


def room_address(text: str) -> str:
    """An argparse type: an IP address for the team rooms (`--room-bind`, `workshop start --bind`)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text}: give an IP address of this machine (e.g. its LAN address), or 0.0.0.0 for all"
        ) from None


def room_socket(address: str) -> socket.socket:
    """A listening socket on ``address`` (an IP of this machine), any free port; a bad or foreign address is
    refused by name."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError:
        raise UsageError(f"--room-bind {address}: not an IP address (give one of this machine's, or 0.0.0.0)") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
    except OSError as exc:
        sock.close()
        raise UsageError(f"--room-bind {address}: cannot listen there ({exc.strerror})") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
