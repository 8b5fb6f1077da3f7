"""The control API of a running stack: loopback only, and every action needs the run's token.

`blackout up` serves it; `blackout power-off/power-on/status/down` are its clients.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
import socket
import threading
from dataclasses import asdict
from pathlib import Path

import httpx
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException

from chaos.runtime.base import Runtime, RuntimeError_
from services.common.errors import BlackoutError, ConfigError, UsageError
from services.common.policy import parse_profile

CONTROL_FILE = ".control.json"  # under the runs root: how clients find the running stack


def create_control_app(runtime: Runtime, token: str, shutdown: threading.Event) -> FastAPI:
    def authorized(authorization: str | None = Header(None)) -> None:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="a valid control token is required (see runs/.control.json)")

    app = FastAPI(title="blackout-control", dependencies=[Depends(authorized)])

    @app.get("/status")
    def status() -> dict:
        return {"instances": runtime.status()}

    @app.post("/power/{dc}/{action}")
    def power(dc: str, action: str) -> dict:
        if action not in ("off", "on"):
            raise HTTPException(status_code=404, detail=f"unknown action '{action}': use off or on")
        try:
            event = runtime.power_off(dc) if action == "off" else runtime.power_on(dc)
        except ConfigError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except RuntimeError_ as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return asdict(event)

    @app.put("/profile")
    def profile(body: dict) -> dict:
        try:
            chosen = parse_profile(body, "PUT /profile")
        except ConfigError as exc:
            raise HTTPException(status_code=422, detail=exc.reason) from None
        return {"profile": chosen.name, "instances": runtime.switch_profile(chosen)}

    @app.post("/shutdown")
    def stop() -> dict:
        shutdown.set()
        return {"stopping": True}

    return app


class ControlServer:
    """Serves the control API from a thread of the supervisor process."""

    def __init__(self, runtime: Runtime, runs_root: Path, run_dir: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        self.shutdown = threading.Event()
        self.file = runs_root / CONTROL_FILE
        self.run_dir = run_dir
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(create_control_app(runtime, self.token, self.shutdown), log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> None:
        self._thread.start()
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the token is a key: owner only
        with os.fdopen(fd, "w") as f:
            json.dump({"url": self.url, "token": self.token, "pid": os.getpid(), "run_dir": str(self.run_dir)}, f)

    def stop(self) -> None:
        self.file.unlink(missing_ok=True)
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()


class ControlClient:
    def __init__(self, runs_root: Path) -> None:
        path = runs_root / CONTROL_FILE
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            raise BlackoutError(f"no running stack found ({path} is missing): start one with `blackout up`") from None
        self.url, self.token, self.pid, self.run_dir = info["url"], info["token"], info["pid"], info["run_dir"]

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 120.0) -> dict:
        try:
            response = httpx.request(
                method, self.url + path, json=body, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise BlackoutError(f"the supervisor at {self.url} does not answer ({type(exc).__name__})") from None
        if response.status_code >= 400:
            detail = response.json().get("detail", response.text)
            # 404: the user named something that does not exist (a data center); a usage error
            raise (UsageError(detail) if response.status_code in (404, 422) else BlackoutError(detail))
        return response.json()
