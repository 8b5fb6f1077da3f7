"""The control room (GET /room, its assets, state, chart window and filtered events) and the exercise routes,
as a router the control app includes: every route sits behind the app's token check, which tells the role
(chaos/workshop/auth.py). What a team is shown is filtered here: while it plays, nothing names the fault."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from chaos.controller import Controller
from chaos.event_stream import StreamGate, event_stream
from chaos.guarded import guarded
from chaos.workshop.auth import ROOM_PATH, Keys, Role, cookie_names, role_of
from chaos.workshop.config import ExerciseConfig
from chaos.workshop.desk import Desk
from chaos.workshop.exercise import ROLE_SLOTS, Exercise, exercise_folder
from chaos.workshop.game_master import console_router
from chaos.workshop.pager import RUNBOOKS as RUNBOOK_NAMES
from chaos.workshop.pages import STATIC, serve_assets
from chaos.workshop.window import current_run_dir
from services.common.policy import LIBRARY_NAME

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"  # in a checkout; an install may lack them
# page.js and room.css are the console's too: under /room, which every role reaches
ASSETS = {"page.js": "text/javascript", "room.js": "text/javascript", "room.css": "text/css"}


class StartRequest(ExerciseConfig):
    scenario: str | None = Field(None, pattern=LIBRARY_NAME)  # over HTTP a library name, never a path
    # also write the leaderboard of every team playing beside this one: in the folder holding this stack's
    # runs folder (runs/teams/<team> -> runs/teams), which the server knows; never a folder the caller names
    leaderboard: bool = False


class Declaration(BaseModel):
    """What users see, where, and the fault type: the words of the room's vocabulary (GET /exercise)."""

    model_config = ConfigDict(extra="forbid")
    symptom: str = Field(min_length=1, max_length=40)
    where: str = Field(min_length=1, max_length=40)
    fault: str = Field(min_length=1, max_length=40)
    text: str = Field("", max_length=500)  # the team's own words, for the debrief


class Roles(BaseModel):
    """Who holds the team's roles this round: free-text names (a slot left out keeps its name)."""

    model_config = ConfigDict(extra="forbid")
    incident_commander: str | None = Field(None, max_length=60)
    ops: str | None = Field(None, max_length=60)
    communications: str | None = Field(None, max_length=60)


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=500)


class Remediation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(min_length=1)
    target: str | dict[str, Any] | None = None  # a name, or a lever's whole spec (e.g. a power-on's boot order)


def workshop_router(controller: Controller, shutdown: threading.Event, gate: StreamGate, keys: Keys) -> APIRouter:
    desk = Desk(controller)
    router = APIRouter()
    router.include_router(console_router(desk, keys))  # the game master's console: the instructor's only

    @router.get(ROOM_PATH, include_in_schema=False)
    def room(request: Request) -> Any:
        given = next((request.query_params[k] for k in ("token", "code", "watch") if request.query_params.get(k)), None)
        if given:  # already checked: trade it for this role's cookie and drop it from the URL
            role = role_of(request)
            names = cookie_names(request.scope)
            answer = RedirectResponse(ROOM_PATH, status_code=303)
            answer.set_cookie(names[role], given, httponly=True, samesite="strict", path="/")
            # one role per browser and stack: the instructor trying the team's link sees what the team sees
            for other in Role:
                if other is not role:
                    answer.delete_cookie(names[other], path="/")
            return answer
        return FileResponse(STATIC / "room.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    serve_assets(router, ROOM_PATH, ASSETS)

    @router.get(ROOM_PATH + "/runbooks/{name}", include_in_schema=False)
    def runbook(name: str) -> FileResponse:
        """docs/runbooks/<service>.md, linked from the page: plain text, read in the browser."""
        path = RUNBOOKS / f"{name}.md"
        if name not in RUNBOOK_NAMES or not path.is_file():
            raise HTTPException(status_code=404, detail=f"no runbook '{name}'; runbooks: {', '.join(RUNBOOK_NAMES)}")
        return FileResponse(path, media_type="text/plain; charset=utf-8")

    def shown(request: Request, exercise: Exercise) -> dict[str, Any]:
        """The exercise as this caller may see it (the team and watch codes for the instructor only)."""
        view = exercise.view()
        if role_of(request) is Role.INSTRUCTOR:
            view["team_code"], view["watch_code"] = keys.team_code, keys.watch_code
        return view

    @router.get(ROOM_PATH + "/state")
    def state(request: Request) -> dict[str, Any]:
        topology = controller.runtime.topology
        exercise = desk.exercise
        team = role_of(request) is not Role.INSTRUCTOR  # a team, or watchers: the fault is not theirs to see
        return {
            "role": role_of(request),
            "data_centers": {dc: list(center.instances) for dc, center in topology.data_centers.items()},
            "instances": desk.probe.instances(),
            "power": controller.runtime.powered(),
            "faults": []
            if team and exercise and not exercise.result
            else [f.to_data() for f in controller.injector.active()],
            "run": {"running": controller.run_state()["running"]},
            "exercise": shown(request, exercise) if exercise else None,
        }

    @router.get(ROOM_PATH + "/window")
    def window(
        request: Request, seconds: float = Query(180, ge=10, le=600), bucket: float = Query(5, ge=1, le=60)
    ) -> dict[str, Any]:
        # an exercise's round runs in the instructor's folder (chaos/workshop/exercise.py): the charts follow it
        run_dir = current_run_dir(desk.exercise.folder if desk.exercise else controller.runs_root)
        desk.window.follow(run_dir)
        now = time.time()
        return {
            "now": now,
            "run_dir": str(run_dir) if run_dir and role_of(request) is Role.INSTRUCTOR else None,
            "bucket_s": bucket,
            "series": desk.window.series(now, seconds, bucket),
        }

    @router.get(ROOM_PATH + "/events")
    async def events(request: Request) -> EventSourceResponse:
        """The controller's events: all of them for the instructor; for a team, what it may see (chaos/workshop/
        exercise.py: until the end, the symptoms and its own moves, never the fault)."""
        if role_of(request) is Role.INSTRUCTOR:
            return event_stream(controller.bus, shutdown, gate, "blackout room events")

        def for_team(event: dict[str, Any]) -> dict[str, Any] | None:
            return desk.exercise.for_team(event) if desk.exercise else None

        return event_stream(controller.bus, shutdown, gate, "blackout room events", for_team)

    @router.post("/exercise", status_code=201)
    def start(request: StartRequest, http: Request) -> dict[str, Any]:
        with desk.lock:
            if desk.exercise is not None and desk.exercise.result is None:
                raise HTTPException(
                    status_code=409, detail=f"team {desk.exercise.config.team} is playing: end it first"
                )
            config = ExerciseConfig.model_validate(request.model_dump(exclude={"leaderboard"}))
            folder = exercise_folder(controller.runs_root, config.team)

            def begin() -> Exercise:
                exercise = Exercise(controller, config, folder)
                exercise.start()
                return exercise

            desk.exercise = guarded(begin, missing=422)  # the body named it: an unknown scenario is no 404
            keys.new_team_code()
            desk.board = controller.runs_root.resolve().parent if request.leaderboard else None
            return shown(http, desk.exercise)

    @router.get("/exercise")
    def view(request: Request) -> dict[str, Any]:
        return shown(request, desk.current())

    @router.post("/exercise/detect")
    def detect(body: Declaration) -> dict[str, Any]:
        return guarded(lambda: desk.current().detect(body.symptom, body.where, body.fault, body.text))

    @router.post("/exercise/hint")
    def hint() -> dict[str, Any]:
        """The card's next hint, on the room's request: it costs points (chaos/workshop/score.py HINT_COSTS)."""
        return guarded(lambda: desk.current().hint())

    @router.post("/exercise/roles")
    def roles(body: Roles) -> dict[str, str]:
        """The team page's role slots (incident commander, ops, communications)."""
        given = {slot: name for slot, name in body.model_dump().items() if name is not None and slot in ROLE_SLOTS}
        return guarded(lambda: desk.current().set_roles(given))

    @router.post("/exercise/status-update")
    def status_update(body: StatusUpdate) -> dict[str, Any]:
        """A timestamped status update: shown in the console and written in the post-mortem draft."""
        return guarded(lambda: desk.current().status_update(body.text))

    @router.post("/exercise/ack")
    def ack() -> dict[str, Any]:
        """Acknowledge the page: the time from the page to this is scored."""
        return guarded(lambda: desk.current().ack())

    @router.post("/exercise/act")
    def act(body: Remediation) -> dict[str, Any]:
        try:
            return guarded(lambda: desk.current().act(body.action, body.target))
        except PermissionError as exc:
            raise HTTPException(status_code=403, detail=str(exc)) from None

    @router.post("/exercise/end")
    def end() -> dict[str, Any]:
        exercise = desk.current()
        return guarded(lambda: exercise.end(desk.board))

    return router
