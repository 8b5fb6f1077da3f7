"""The control file and the control API's client: how `blackout` commands find the running stack (under the runs
root) and call it. The server is chaos/control_api.py; this side needs none of it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from chaos.runtime.pids import existed_at
from services.common.atomic_file import write_atomically
from services.common.errors import BlackoutError, UsageError

CONTROL_FILE = ".control.json"  # under the runs root: how clients find the running stack


def publish(path: Path, info: dict[str, Any]) -> bool:
    """Write the control file whole (a temp file renamed over it: never torn, never through a symlink), in an
    owner-only runs folder. False, writing nothing, while another live process serves from it: a `blackout
    run` beside `up` leaves up's file alone, so clients keep finding the stack."""
    current = read_control(path)
    pid = current.get("pid") if current else None
    if isinstance(pid, int) and pid != os.getpid() and existed_at(pid, path.lstat().st_mtime):
        return False  # a reused pid is no owner (chaos/runtime/pids.py)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)  # run folders hold journals and the supervisor's log
    write_atomically(path, json.dumps(info))  # 0600: the token is a key
    return True


def read_control(path: Path) -> dict[str, Any] | None:
    """The control file's content, or None (missing, a symlink, not JSON)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
        self.room_url: str = info.get("room_url", self.url)  # the team rooms' address (`up --room-bind`)

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
