"""The control API's event streams on a real server (uvicorn on a free port) with real clients: what they carry,
and that hundreds of idle or vanished ones never take the kill switch (/panic, /status, /shutdown) away."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from fakes.control import recording_controller

from chaos.control_api import ControlServer
from chaos.event_stream import MAX_STREAMS

KILL_SWITCH_S = 1.0  # what the kill switch must answer within


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)  # poll interval


@pytest.fixture
def served(tmp_path):
    controller = recording_controller(tmp_path)
    server = ControlServer(controller, tmp_path, tmp_path)
    server.start()
    yield server, controller, {"Authorization": f"Bearer {server.token}"}
    server.stop()


def open_stream(port: int, token: str) -> socket.socket:
    """A client that asks for /events and then reads nothing: an idle tab, a stalled proxy."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Accept: text/event-stream\r\n\r\n".encode()
    )
    return sock


def status_line(sock: socket.socket) -> str:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(256)
        assert chunk, "the server closed the connection without answering"
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def timed(method: str, url: str, headers: dict) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = httpx.request(method, url, headers=headers, timeout=5 * KILL_SWITCH_S)
    return answer, time.monotonic() - started


def sse_events(lines: Iterator[str]) -> Iterator[dict]:
    """Server-sent events as they arrive, {"event": ..., "data": ...}; comments and pings are skipped."""
    block: dict = {}
    for line in lines:
        if not line:
            if block:
                yield block
            block = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            block[key] = value.strip()


def test_the_stream_carries_the_recent_past_then_live_events_and_ends_with_the_controller(served):
    server, controller, auth = served
    controller.power("dc-east", "power_off")  # before subscribing: a new subscriber gets the recent past
    with httpx.stream("GET", server.url + "/events", headers=auth, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith(": blackout events")
        events = sse_events(lines)
        past = next(events)
        assert past["event"] == "fault-on" and json.loads(past["data"])["id"] == "power-off-1"
        controller.power("dc-east", "power_on")  # after subscribing: delivered live
        live = next(events)
        assert live["event"] == "fault-off" and json.loads(live["data"])["output"] == {"by": "power_on"}
        server.shutdown.set()
        assert [e["event"] for e in events if e["event"] == "fault-on"] == []  # then the stream ends
    wait_for(lambda: controller.bus.subscribers() == 0, 5, "the ended stream stayed subscribed")


def test_hundreds_of_idle_streams_never_take_the_kill_switch_and_gone_clients_end_theirs(served):
    server, controller, auth = served
    port = int(server.url.rsplit(":", 1)[1])
    controller.power("dc-east", "power_off")  # something for panic to undo
    clients = [open_stream(port, server.token) for _ in range(MAX_STREAMS + 50)]
    try:
        answers = [status_line(sock) for sock in clients]
        assert answers.count("HTTP/1.1 200 OK") == MAX_STREAMS  # every stream up to the cap is served
        assert answers.count("HTTP/1.1 503 Service Unavailable") == 50, set(answers)  # beyond it: a clear refusal
        refused = httpx.get(server.url + "/events", headers=auth, timeout=5)
        assert refused.status_code == 503 and "event streams are open" in refused.json()["detail"]
        assert refused.headers["retry-after"]
        assert controller.bus.subscribers() == MAX_STREAMS

        for method, path in (("GET", "/status"), ("POST", "/panic")):  # with every stream open and idle
            answer, took = timed(method, server.url + path, auth)
            assert answer.status_code == 200 and took < KILL_SWITCH_S, (path, took)
        assert controller.runtime.powered() == {"dc-east": True, "dc-west": True}  # the panic did its work
    finally:
        for sock in clients:
            sock.close()  # every client goes away without a word
    wait_for(lambda: controller.bus.subscribers() == 0, 10, "streams of clients that are gone still run")
    with httpx.stream("GET", server.url + "/events", headers=auth, timeout=5) as again:
        assert again.status_code == 200  # the places of the streams that ended are free again

    for method, path in (("GET", "/status"), ("POST", "/panic"), ("POST", "/shutdown")):
        answer, took = timed(method, server.url + path, auth)
        assert answer.status_code == 200 and took < KILL_SWITCH_S, (path, took)
    assert server.shutdown.is_set()


def test_the_server_stops_promptly_with_streams_open(tmp_path):
    controller = recording_controller(tmp_path)
    server = ControlServer(controller, tmp_path, tmp_path)
    server.start()
    port = int(server.url.rsplit(":", 1)[1])
    clients = [open_stream(port, server.token) for _ in range(50)]
    try:
        assert {status_line(sock) for sock in clients} == {"HTTP/1.1 200 OK"}
        started = time.monotonic()
        server.stop()  # what `blackout down` waits for: it once hung on idle streams
        assert time.monotonic() - started < 5
        assert not server._thread.is_alive()
    finally:
        for sock in clients:
            sock.close()
