"""Handing a held listening socket to a "container" (here: this process) and the lifeline back."""

from __future__ import annotations

import secrets
import socket

import pytest

from chaos.runtime import container_entry
from chaos.runtime.handoff import SocketHandoff
from chaos.runtime.sockets import bind


@pytest.fixture
def served():
    listener = bind("auth-east", 0)
    name = f"blackout-test-{secrets.token_hex(6)}"
    handoff = SocketHandoff(name, "the-secret", {"auth-east": listener})
    yield name, handoff, listener
    handoff.close()
    listener.close()


def test_the_instance_gets_the_same_listening_socket_and_a_dead_copy_leaves_the_port_hanging(served):
    name, handoff, listener = served
    port = listener.getsockname()[1]
    fd, lifeline = container_entry.fetch_listener(name, "auth-east", "the-secret")
    theirs = socket.socket(fileno=fd)
    assert theirs.getsockname() == ("127.0.0.1", port)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as caller:
        conn, _ = theirs.accept()  # the "container" serves from the runtime's socket
        conn.sendall(b"hi")
        assert caller.recv(2) == b"hi"
        conn.close()
    theirs.close()  # the container is killed: its copy is gone, the runtime's stays
    handoff.cut(["auth-east"])
    with socket.create_connection(("127.0.0.1", port), timeout=2) as caller:  # accepted, not refused
        caller.settimeout(0.3)
        with pytest.raises(TimeoutError):  # and never answered: a dead host behind a live switch
            caller.recv(1)
    assert lifeline.recv(1) == b""  # the lifeline closed: an entrypoint still running would exit now
    lifeline.close()


@pytest.mark.parametrize(
    ("instance", "secret", "reason"),
    [
        ("auth-east", "wrong", "wrong secret"),
        ("views-east", "the-secret", "no instance 'views-east'"),
    ],
)
def test_a_wrong_secret_or_instance_gets_no_socket(served, capsys, instance, secret, reason):
    name, _, _ = served
    with pytest.raises(SystemExit) as exit_:
        container_entry.fetch_listener(name, instance, secret)
    assert reason in str(exit_.value)


def test_no_runtime_listening_is_a_clear_exit():
    with pytest.raises(SystemExit) as exit_:
        container_entry.fetch_listener(f"blackout-nobody-{secrets.token_hex(6)}", "auth-east", "x")
    assert "no listening socket from the runtime" in str(exit_.value)
