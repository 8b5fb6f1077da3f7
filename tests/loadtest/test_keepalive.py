"""Kept-alive connections stay in use however many files a locust worker holds open (loadtest/keepalive.py)."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.keepalive import socket_alive

REPO = Path(__file__).resolve().parents[2]
HIGH = 1100  # open files before the connection: its descriptor is above select()'s 1,023


@pytest.fixture
def many_files() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < HIGH + 100:
        pytest.skip(f"the hard limit on open files ({hard}) is below {HIGH + 100}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HIGH + 100), hard))
    filler = [socket.socket() for _ in range(HIGH)]
    try:
        yield
    finally:
        for s in filler:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
    return client, peer


def test_an_idle_connection_is_alive_until_the_server_closes_it_or_sends_unasked(many_files) -> None:
    client, peer = _pair()
    try:
        assert client.fileno() > 1023
        assert socket_alive(client)
        peer.sendall(b"stray")
        assert not socket_alive(client)  # bytes nobody asked for: the connection is not in a clean state
    finally:
        client.close()
        peer.close()
    client, peer = _pair()
    try:
        peer.close()  # the server's keep-alive timeout
        assert not socket_alive(client)
    finally:
        client.close()
    assert not socket_alive(client)  # closed on our side
    assert not socket_alive(None)


REUSE = r"""
import gevent.monkey; gevent.monkey.patch_all()
import resource, socket, sys, gevent
from locust.contrib.fasthttp import FastHttpSession
from locust.event import EventHook
from loadtest import keepalive
assert keepalive.install()  # this geventhttpclient checks idle connections: the check to replace
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, %(high)d + 100), hard))
filler = [socket.socket() for _ in range(%(high)d)]
server = socket.create_server(("127.0.0.1", 0))
accepted = []
def serve(conn):
    while conn.recv(65536):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
def accept():
    while True:
        conn, _ = server.accept()
        accepted.append(conn)
        gevent.spawn(serve, conn)
gevent.spawn(accept)
session = FastHttpSession(base_url="http://127.0.0.1", request_event=EventHook(), user=None)
for _ in range(10):
    with session.request("GET", "http://127.0.0.1:%%d/feed" %% server.getsockname()[1], catch_response=True) as resp:
        assert resp.status_code == 200
        resp.success()
print(len(accepted))
"""


def test_a_locust_process_with_many_files_open_reuses_its_connections(many_files) -> None:
    # in a process of its own: gevent's monkey patching, as in locust
    proc = subprocess.run(
        [sys.executable, "-c", REUSE % {"high": HIGH}], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["1"]  # 10 requests, one connection (without install(): 10)
