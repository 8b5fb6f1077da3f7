"""A tiny in-memory fake of the Blackout gateway HTTP API, for tests (127.0.0.1 only).

``make_app(dc)`` builds the FastAPI app; ``FakeGatewayServer`` serves it with uvicorn in a
background thread on a free port::

    with FakeGatewayServer("dc-east") as gw:
        requests.get(gw.url + "/healthz")
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Response
from fastapi.responses import JSONResponse

from services.common.accounts import MAX_USERS, account
from services.common.api import HEALTHZ
from services.common.seed import DEMO_PASSWORD, N_CREATORS, N_VIDEOS, creator_name, video_name
from services.common.tokens import TokenError, bearer
from services.gateway import api
from services.gateway.api import LoginRequest, UploadRequest, ViewRequest

TOKEN_TTL_S = 3600.0


def _demo_users() -> dict[str, str]:
    return dict(account(i) for i in range(MAX_USERS))


@dataclass
class FakeState:
    users: dict[str, str] = field(default_factory=_demo_users)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (user, expires_at)
    views: dict[str, int] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    uploads: list[dict] = field(default_factory=list)
    feed_status: int | None = None  # set: every feed is answered with this status (a failing gateway)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _blackout_headers(response: Response, attempts: int = 1, calls: int = 1) -> None:
    response.headers["X-Blackout-Attempts"] = str(attempts)
    response.headers["X-Blackout-Calls"] = str(calls)


def make_app(dc: str = "dc-east", state: FakeState | None = None) -> FastAPI:
    st = state or FakeState()
    app = FastAPI(title=f"fake gateway {dc}")
    app.state.fake = st

    @app.middleware("http")
    async def headers_on_every_response(request, call_next):  # errors too, like the real gateway
        response = await call_next(request)
        response.headers.setdefault("X-Blackout-Attempts", "1")
        response.headers.setdefault("X-Blackout-Calls", "1")
        return response

    def user_of(authorization: str | None) -> str:
        try:
            entry = st.tokens.get(bearer(authorization))
        except TokenError:
            raise HTTPException(401, "missing token") from None
        if entry is None or entry[1] < time.time():
            raise HTTPException(401, "invalid or expired token")
        return entry[0]

    @app.get(HEALTHZ)
    def healthz() -> dict:
        return {"status": "ok", "dc": dc}

    @app.post(api.LOGIN)
    def login(body: LoginRequest, response: Response):
        role = st.users.get(body.username)
        if role is None or body.password != DEMO_PASSWORD:
            return JSONResponse({"detail": "bad credentials"}, status_code=401)
        token = uuid.uuid4().hex
        expires_at = time.time() + TOKEN_TTL_S
        st.tokens[token] = (body.username, expires_at)
        _blackout_headers(response)
        return {"token": token, "user_id": body.username, "role": role, "expires_at": expires_at}

    @app.get(api.FEED)
    def feed(response: Response, limit: int = api.FEED_LIMIT, authorization: str | None = Header(None)):
        user = user_of(authorization)
        if st.feed_status is not None:
            return JSONResponse({"detail": "failing on purpose"}, status_code=st.feed_status)
        start = (sum(map(ord, user)) * 7) % N_VIDEOS
        items = []
        for k in range(min(limit, api.FEED_MAX)):
            vid = video_name((start + k) % N_VIDEOS + 1)
            items.append(
                {
                    "video_id": vid,
                    "title": f"Video {vid}",
                    "creator_id": creator_name((start + k) % N_CREATORS + 1),
                    "source": "personalized",
                    "views": st.views.get(vid, 0),
                    "views_status": "ok",
                }
            )
        _blackout_headers(response, attempts=2, calls=2)
        return {"user_id": user, "items": items}

    @app.post(api.VIEW)
    def view(video_id: str, body: ViewRequest, response: Response, authorization: str | None = Header(None)):
        user_of(authorization)
        with st.lock:
            counted = body.event_id not in st.events
            if counted:
                st.events.add(body.event_id)
                st.views[video_id] = st.views.get(video_id, 0) + 1
        _blackout_headers(response)
        return {"event_id": body.event_id, "video_id": video_id, "counted": counted}

    @app.post(api.UPLOAD, status_code=201)
    def upload(body: UploadRequest, response: Response, authorization: str | None = Header(None)):
        user = user_of(authorization)
        if st.users.get(user) != "creator":
            raise HTTPException(403, "only creators upload")
        video = {"video_id": f"video-u{len(st.uploads) + 1:04d}", "title": body.title, "creator_id": user}
        st.uploads.append(video)
        _blackout_headers(response)
        return video

    @app.get(api.EARNINGS)
    def earnings(response: Response, authorization: str | None = Header(None)):
        user = user_of(authorization)
        _blackout_headers(response, attempts=3, calls=1)
        return {"creator_id": user, "views": 42, "earnings_cents": 420, "status": "ok"}

    return app


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never via a proxy


class FakeGatewayServer:
    """Serve ``make_app(dc)`` with uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, dc: str = "dc-east", port: int | None = None, state: FakeState | None = None) -> None:
        self.dc = dc
        # Bound here and handed to uvicorn: port 0 gives a free port nothing can take in between.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.port = self.sock.getsockname()[1]
        self.app = make_app(dc, state)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name=f"fake-gateway-{dc}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> FakeState:
        return self.app.state.fake

    def start(self, deadline_s: float = 10.0) -> FakeGatewayServer:
        self.thread.start()
        deadline = time.monotonic() + deadline_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise RuntimeError(f"fake gateway {self.dc} exited during start")
            try:
                with _NO_PROXY.open(self.url + HEALTHZ, timeout=0.5) as r:
                    if r.status == 200:
                        return self
            except OSError as exc:
                last = exc
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"fake gateway {self.dc} not healthy on {self.url} within {deadline_s}s: {last}")

    def stop(self, timeout_s: float = 5.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout_s)
        self.sock.close()

    def __enter__(self) -> FakeGatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
