"""The control API of a running stack: loopback only, and every call needs the run's token (401 without it).

`blackout up` and every scenario run serve it; `blackout status/power-off/power-on/fault/panic/down` are its
clients; `GET /events` streams power, fault and hypothesis events (server-sent events) to a web page.
OpenAPI at /docs.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import Body, Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from chaos.controller import Controller
from chaos.faults.injector import profile_file
from chaos.runtime.base import RuntimeError_
from chaos.runtime.pids import existed_at
from chaos.workshop.auth import presented_token, token_matches
from chaos.workshop.routes import workshop_router
from services.common.errors import BlackoutError, ConfigError, ConflictError, UsageError
from services.common.policy import parse_profile

CONTROL_FILE = ".control.json"  # under the runs root: how clients find the running stack
START_TIMEOUT_S = 10.0
KEEPALIVE_S = 15.0


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(min_length=1)
    profile: str | None = None  # a profile name (profiles/<name>.yaml) or path
    seed: int | None = None
    users: int | None = Field(None, ge=1, le=100_000)


def create_control_app(controller: Controller, token: str, shutdown: threading.Event) -> FastAPI:
    def authorized(request: Request) -> None:
        # the header for clients; the control room's cookie (or GET /room?token=) for a browser
        if not token_matches(presented_token(request), token):
            raise HTTPException(status_code=401, detail="a valid control token is required (see runs/.control.json)")

    app = FastAPI(title="blackout-control", dependencies=[Depends(authorized)])
    app.include_router(workshop_router(controller, shutdown))  # the control room and the exercise

    @app.get("/status")
    def status() -> dict:
        return controller.status()

    @app.get("/scenarios")
    def scenarios() -> list[dict]:
        return controller.scenarios()

    @app.post("/power/{dc}/{action}")
    def power(dc: str, action: str) -> dict:
        if action not in ("off", "on"):
            raise HTTPException(status_code=404, detail=f"unknown action '{action}': use off or on")
        return _guarded(lambda: controller.power(dc, action))

    @app.get("/faults")
    def faults() -> list[dict]:
        return [f.to_data() for f in controller.injector.active()]

    @app.post("/faults")
    def inject(body: dict = Body(..., examples=[{"latency": {"from": "dc-west", "to": "dc-east", "ms": 300}, "for": "20s"}])) -> dict:
        return _guarded(lambda: controller.inject(body))

    @app.delete("/faults/{fault_id}")
    def remove(fault_id: str) -> dict:
        return _guarded(lambda: controller.remove(fault_id))

    @app.post("/panic")
    def panic() -> dict:
        return _guarded(controller.panic)

    @app.put("/profile")
    def profile(body: dict = Body(...)) -> dict:
        def switch() -> dict:
            chosen = parse_profile(body, "PUT /profile")
            return {"profile": chosen.name, "instances": controller.switch_profile(chosen)}

        return _guarded(switch)

    @app.post("/runs", status_code=202)
    def start_run(request: RunRequest) -> dict:
        def start() -> dict:
            profile = profile_file(request.profile) if request.profile else None
            return controller.start_run(request.scenario, profile, request.seed, request.users)

        return _guarded(start)

    @app.get("/runs/current")
    def current_run() -> dict:
        return controller.run_state()

    @app.delete("/runs/current")
    def stop_run() -> dict:
        return {"stopped": controller.stop_run(wait=True), **controller.run_state()}

    @app.get("/events")
    def events() -> StreamingResponse:
        return StreamingResponse(_stream(controller, shutdown), media_type="text/event-stream")

    @app.post("/shutdown")
    def stop() -> dict:
        shutdown.set()
        return {"stopping": True}

    return app


def _guarded(action: Any) -> Any:
    """A user's mistake is a 4xx with the reason; a runtime that cannot do it now is a 409."""
    try:
        return action()
    except ConfigError as exc:
        raise HTTPException(status_code=422 if exc.source in ("request body", "PUT /profile") else 404,
                            detail=str(exc)) from None  # fmt: skip
    except (ConflictError, RuntimeError_) as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except UsageError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


def _stream(controller: Controller, shutdown: threading.Event) -> Iterator[str]:
    q = controller.bus.subscribe()
    try:
        yield ": blackout events\n\n"
        while not shutdown.is_set():
            try:
                event = q.get(timeout=1.0)
            except queue.Empty:
                continue
            yield f"event: {event.get('event', 'message')}\ndata: {json.dumps(event, default=str)}\n\n"
    finally:
        controller.bus.unsubscribe(q)


class ControlServer:
    """Serves the control API from a thread of the supervisor (or run) process."""

    def __init__(self, controller: Controller, runs_root: Path, run_dir: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        self.shutdown = threading.Event()
        self.file = runs_root / CONTROL_FILE
        self.run_dir = run_dir
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))  # loopback only, any free port
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        app = create_control_app(controller, self.token, self.shutdown)
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> None:
        """Serve, and only once it answers write the control file clients look for."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise BlackoutError(f"the control API did not start on {self.url}")
            time.sleep(0.02)  # poll interval
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the token is a key: owner only
        with os.fdopen(fd, "w") as f:
            json.dump({"url": self.url, "token": self.token, "pid": os.getpid(), "run_dir": str(self.run_dir)}, f)

    def stop(self) -> None:
        if self.file.exists() and _owner_pid(self.file) == os.getpid():
            self.file.unlink(missing_ok=True)
        self.shutdown.set()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._sock.close()


def _owner_pid(path: Path) -> int | None:
    try:
        return json.loads(path.read_text()).get("pid")
    except (OSError, ValueError):
        return None


def supervisor_running(runs_root: Path) -> bool:
    """Whether a supervisor is up for ``runs_root``: its control file is there and names a live process that
    already ran when the file was written (a later one only got the pid of a supervisor that was killed)."""
    path = runs_root / CONTROL_FILE
    try:
        written = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return existed_at(ControlClient(runs_root).pid, written)


class ControlClient:
    def __init__(self, runs_root: Path) -> None:
        path = runs_root / CONTROL_FILE
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            raise BlackoutError(f"no running stack found ({path} is missing): start one with `blackout up`") from None
        except ValueError:
            raise BlackoutError(f"{path} is not valid JSON: remove it if no stack is running") from None
        self.url, self.token, self.pid, self.run_dir = info["url"], info["token"], info["pid"], info["run_dir"]

    def call(self, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
        try:
            response = httpx.request(
                method, self.url + path, json=body, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise BlackoutError(f"the controller at {self.url} does not answer ({type(exc).__name__})") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text[:500] or f"HTTP {response.status_code}"
            if not isinstance(detail, str):
                detail = json.dumps(detail)
            # 404/409/422: the user named something that does not exist or cannot be now; a usage error
            raise (UsageError(detail) if response.status_code in (404, 409, 422) else BlackoutError(detail))
        return response.json()
