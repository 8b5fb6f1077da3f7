"""The game master's console (GET /console, the instructor's only): every team's round on one page, and the
game master's moves: give a hint, add a second fault, extend the round, end it.

One console, several stacks. The stacks are this one and every team of the board its runs folder sits in
(runs/teams/<team> -> runs/teams): the teams `blackout workshop start` wrote in the board's workshop.json,
else every sibling folder with a control file (`blackout exercise start --board`). Each stack's control API is
called server-side with that stack's own token, read from its control file (runs/<team>/.control.json): the
page holds no token, only its cookie for this stack. Only loopback URLs are called."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from chaos.control_client import CONTROL_FILE, read_control
from chaos.guarded import guarded
from chaos.workshop.auth import Keys
from chaos.workshop.desk import Desk
from chaos.workshop.exercise import ADDABLE
from chaos.workshop.pages import STATIC, serve_assets

CONSOLE_PATH = "/console"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
BOARD_STATE = "workshop.json"  # teams.py STATE_FILE (teams.py imports the control API serving this: a cycle)
LOOPBACK = "http://127.0.0.1:"
CALL_TIMEOUT_S = 10.0  # a stack's answer; ending a round waits for its run's rollbacks (END_TIMEOUT_S)
END_TIMEOUT_S = 180.0
MOVES = ("hint", "fault", "extend", "end")
MAX_EXTEND_S = 1800.0  # one extension; the run caps the total (chaos/engine/extension.py)


class AddedFault(BaseModel):
    """A second fault: a fault kind of the registry (GET /console/teams lists them) on a target of the topology
    (a name, or the kind's whole spec, e.g. a latency's {from, to, ms}), for a while or until the end."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(min_length=1, max_length=40)
    target: str | dict[str, Any] = Field(min_length=1)
    for_s: float | None = Field(None, gt=0, le=3600)


class Extend(BaseModel):
    """More time for a team: its round's users (and a held fault) keep going this much longer."""

    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(gt=0, le=MAX_EXTEND_S)


Body = AddedFault | Extend  # the moves' bodies: a fault's, an extension's; hint and end take none


def board_stacks(runs_root: Path) -> dict[str, Path]:
    """Every stack of the board ``runs_root`` sits in, by folder name, this one included."""
    here = runs_root.resolve()
    board = here.parent
    stacks: dict[str, Path] = {}
    state = board / BOARD_STATE
    try:
        teams = json.loads(state.read_text()).get("teams", {})
        stacks = {name: (board / seat["runs"]).resolve() for name, seat in teams.items()}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        # no workshop (or not one this console reads): the board's folders that hold a stack
        stacks = {f.parent.name: f.parent.resolve() for f in sorted(board.glob(f"*/{CONTROL_FILE}"))}
    stacks.setdefault(here.name, here)
    return dict(sorted(stacks.items()))


def console_router(desk: Desk, keys: Keys) -> APIRouter:
    router = APIRouter()
    controller = desk.controller

    def local() -> dict[str, Any]:
        exercise = desk.current()
        return {**exercise.console(), "team_code": keys.team_code, "watch_code": keys.watch_code}

    def act_here(move: str, body: Body | None) -> dict[str, Any]:
        exercise = desk.current()
        if move == "hint":
            return guarded(lambda: exercise.hint(by="instructor"))
        if isinstance(body, AddedFault):
            return guarded(lambda: exercise.add_fault(body.kind, body.target, body.for_s))
        if isinstance(body, Extend):
            return guarded(lambda: exercise.extend(body.seconds))
        return guarded(lambda: exercise.end(desk.board))

    def remote(runs: Path) -> tuple[str, dict[str, str]]:
        """A stack's URL and the instructor's header for it, from its control file (409: not up)."""
        info = read_control(runs / CONTROL_FILE) or {}
        url, token = info.get("url"), info.get("token")
        if not isinstance(url, str) or not isinstance(token, str):
            raise HTTPException(status_code=409, detail=f"stack {runs.name} is not up (no control file)")
        if not url.startswith(LOOPBACK):
            raise HTTPException(status_code=409, detail=f"stack {runs.name}'s control API is not on 127.0.0.1")
        return url, {"Authorization": f"Bearer {token}"}

    def call(runs: Path, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
        url, auth = remote(runs)
        try:
            answer = httpx.request(method, url + path, json=body, headers=auth, timeout=timeout)
        except httpx.HTTPError as exc:
            raise HTTPException(
                status_code=502, detail=f"stack {runs.name} did not answer ({type(exc).__name__})"
            ) from None
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("detail", answer.reason_phrase)
            except ValueError:
                detail = answer.reason_phrase
            raise HTTPException(status_code=answer.status_code, detail=f"stack {runs.name}: {detail}")
        data: dict[str, Any] = answer.json()
        return data

    def panel(name: str, runs: Path) -> dict[str, Any]:
        """One team's panel: its exercise as the console sees it, or why there is none."""
        try:
            # the team's and watchers' links: on the stack's team rooms' address (`up --room-bind`), else its own
            info = read_control(runs / CONTROL_FILE) or {}
            room_url = info.get("room_url", info.get("url"))
            if runs == controller.runs_root.resolve():
                return {"stack": name, "here": True, "url": room_url, "exercise": local()}
            exercise = call(runs, "GET", "/console/exercise", None, CALL_TIMEOUT_S)
            return {"stack": name, "here": False, "url": room_url, "exercise": exercise}
        except HTTPException as exc:
            return {"stack": name, "here": runs == controller.runs_root.resolve(), "exercise": None, "why": exc.detail}

    @router.get(CONSOLE_PATH, include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "console.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    serve_assets(router, CONSOLE_PATH, ASSETS)

    @router.get(CONSOLE_PATH + "/exercise")
    def exercise() -> dict[str, Any]:
        """This stack's exercise for the game master: the view, the hidden scenario, the provisional score."""
        return local()

    def checked(move: str, body: Body | None) -> Body | None:
        """The move's body as that move takes it: a 404 for no such move, a 422 saying what the body is."""
        if move not in MOVES:
            raise HTTPException(status_code=404, detail=f"no move '{move}'; moves: {', '.join(MOVES)}")
        if move == "fault" and not isinstance(body, AddedFault):
            raise HTTPException(status_code=422, detail="a fault needs a body: {kind, target, for_s}")
        if move == "extend" and not isinstance(body, Extend):
            raise HTTPException(status_code=422, detail="an extension needs a body: {seconds} (1-1800)")
        return body if move in ("fault", "extend") else None

    @router.post(CONSOLE_PATH + "/exercise/{move}")
    def move_here(move: str, body: Body | None = None) -> dict[str, Any]:
        return act_here(move, checked(move, body))

    @router.get(CONSOLE_PATH + "/teams")
    def teams() -> dict[str, Any]:
        topology = controller.runtime.topology
        return {
            "teams": [panel(name, runs) for name, runs in board_stacks(controller.runs_root).items()],
            "fault_kinds": list(ADDABLE),
            "targets": [*topology.data_centers, *topology.instances()],
        }

    @router.post(CONSOLE_PATH + "/teams/{stack}/{move}")
    def move(stack: str, move: str, body: Body | None = None) -> dict[str, Any]:
        """A game master's move on one team's stack: here, or over that stack's control API."""
        stacks = board_stacks(controller.runs_root)
        if stack not in stacks:
            raise HTTPException(status_code=404, detail=f"no stack '{stack}'; stacks: {', '.join(stacks)}")
        runs = stacks[stack]
        body = checked(move, body)
        if runs == controller.runs_root.resolve():
            return act_here(move, body)
        payload = body.model_dump() if body is not None else None
        return call(
            runs, "POST", f"/console/exercise/{move}", payload, END_TIMEOUT_S if move == "end" else CALL_TIMEOUT_S
        )

    return router
