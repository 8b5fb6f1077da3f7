"""The delayer for real, between two bare namespaces: packets queued by an iptables NFQUEUE rule, held (or
corrupted), let go.

Needs root, iproute2 and iptables-nft with the kernel's NFQUEUE target; skipped (loudly) without them. The netns
runtime's latency faults over it (HTTP between services, a SIGKILLed controller) are in test_netns.py.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes.counters import snmp
from fakes.processes import wait_all_gone

from chaos.runtime import delayer, netlink, nfqueue
from chaos.runtime.base import RuntimeError_
from chaos.runtime.sockets import bind

WHY_NOT = netlink.why_unsupported()
pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=f"DELAYER NOT TESTED: {WHY_NOT}")
SENDER, RECEIVER = "10.239.0.1", "10.239.0.2"  # inside the two namespaces only: no route of the host's sees them


@dataclass
class Pair:
    sender: str  # namespace names
    receiver: str
    logs: Path

    def start(self, ms: float, jitter_ms: float = 0.0, corrupt_percent: float = 0.0) -> subprocess.Popen[str]:
        """A delayer for what the sender sends the receiver, and the rule queueing it where it arrives."""
        proc = delayer.start(
            netlink.netns_path(self.receiver), netlink.DELAY_QUEUE, ms, jitter_ms, self.logs, corrupt_percent
        )
        netlink.add_queue_rule(self.receiver, SENDER)
        return proc

    def held(self) -> int:
        """Packets waiting in the receiver's queue for their verdict (the kernel's count)."""
        table = netlink.run("ip", "netns", "exec", self.receiver, "cat", "/proc/net/netfilter/nfnetlink_queue")
        return sum(int(line.split()[2]) for line in table.splitlines())

    def sockets(self) -> tuple[socket.socket, socket.socket]:
        """A UDP socket in the sender's namespace and one bound to port 0 in the receiver's."""
        out = netlink.in_namespace(self.sender, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        into = netlink.in_namespace(self.receiver, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        into.bind((RECEIVER, 0))
        into.settimeout(10)
        return out, into


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    names = [f"ndl{os.getpid():x}{side}" for side in "sr"]
    for name in names:
        netlink.add_namespace(name)
    try:
        netlink.run(
            "ip", "link", "add", "ds", "netns", names[0], "type", "veth", "peer", "name", "dr", "netns", names[1]
        )
        netlink.add_address(names[0], "ds", f"{SENDER}/24")
        netlink.add_address(names[1], "dr", f"{RECEIVER}/24")
        netlink.set_link(names[0], "ds", up=True)
        netlink.set_link(names[1], "dr", up=True)
        netlink.wait_operstate_up([(names[0], "ds"), (names[1], "dr")])
        if not netlink.has_nfqueue(names[0]):
            pytest.skip("DELAYER NOT TESTED: no iptables-nft, or no NFQUEUE target in this kernel")
        yield Pair(names[0], names[1], tmp_path / "delayer.log")
        assert not netlink.pids_in(names[1]), "a delayer outlived its test"
    finally:
        for name in names:
            for pid in netlink.pids_in(name):  # a failed test's delayer: ours, it joined our namespace
                os.kill(pid, signal.SIGKILL)
            netlink.delete_namespace(name)


def test_each_packet_goes_when_its_own_delay_ends_in_any_order(pair):
    """300 +/- 250 ms per packet: verdicts by packet id, out of order, so 30 datagrams sent at once arrive
    shuffled, none before the least delay, all within the greatest."""
    proc = pair.start(300, 250)
    out, into = pair.sockets()
    with out, into:
        sent = time.monotonic()
        for n in range(30):
            out.sendto(n.to_bytes(4, "big"), into.getsockname())
        order = [int.from_bytes(into.recv(4), "big")]
        first_s = time.monotonic() - sent
        order += [int.from_bytes(into.recv(4), "big") for _ in range(29)]
        last_s = time.monotonic() - sent
    delayer.stop(proc)
    netlink.remove_queue_rule(pair.receiver, SENDER)
    assert sorted(order) == list(range(30))
    assert order != sorted(order), order  # in send order by chance: 1 in 30!
    assert first_s >= 0.05, first_s  # the least delay
    assert last_s < 5, last_s


def test_stopping_it_lets_what_it_holds_go_at_once(pair):
    proc = pair.start(60_000)
    out, into = pair.sockets()
    with out, into:
        sent = time.monotonic()
        out.sendto(b"held", into.getsockname())
        deadline = time.monotonic() + 10
        while pair.held() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pair.held() == 1
        delayer.stop(proc)
        assert into.recv(4) == b"held"
        arrived_s = time.monotonic() - sent
    assert proc.returncode == 0
    netlink.remove_queue_rule(pair.receiver, SENDER)
    assert arrived_s < 30, arrived_s  # not the minute it was to be held


def test_a_dead_delayers_packets_pass_undelayed(pair):
    """--queue-bypass: with nothing bound to the queue (a SIGKILLed delayer) the link is not blackholed."""
    proc = pair.start(60_000)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out, into = pair.sockets()
    with out, into:
        started = time.monotonic()
        out.sendto(b"pass", into.getsockname())
        assert into.recv(4) == b"pass"
        assert time.monotonic() - started < 5
    delayer.stop(proc)
    netlink.remove_queue_rule(pair.receiver, SENDER)
    assert "NFQUEUE" not in netlink.queue_rules(pair.receiver)
    assert not wait_all_gone([proc.pid], 5)


def test_a_delayer_that_cannot_start_says_why(tmp_path):
    with pytest.raises(RuntimeError_, match="did not start: .*no-such-namespace.*No such file"):
        delayer.start(tmp_path / "no-such-namespace", netlink.DELAY_QUEUE, 300, 0, tmp_path / "delayer.log")


def send_through(pair: Pair, data: bytes) -> tuple[bytes, float]:
    """``data`` sent over one TCP connection from the sender to a sink in the receiver: what arrived, and how long
    the sending took until the sink saw the end."""
    server = netlink.in_namespace(pair.receiver, lambda: bind("sink", 0, RECEIVER))
    server.settimeout(30)  # a link that passes nothing fails the test, and leaves no thread behind
    received: list[bytes] = []

    def sink() -> None:
        chunks = []
        with contextlib.suppress(OSError):  # timed out, or closed under it
            conn, _ = server.accept()
            with conn:
                conn.settimeout(30)
                while chunk := conn.recv(1 << 16):
                    chunks.append(chunk)
        received.append(b"".join(chunks))

    reader = threading.Thread(target=sink)
    reader.start()
    with server, netlink.in_namespace(pair.sender, lambda: socket.create_connection(server.getsockname(), 30)) as out:
        started = time.monotonic()
        out.sendall(data)
    reader.join(timeout=60)
    return (received[0] if received else b""), time.monotonic() - started


def test_a_bulk_transfer_through_a_delay_is_held_by_the_link_not_by_the_sender(pair):
    """2 MB through 300 ms: a few round trips of TCP's window growth. Held in the sender's own output path the
    packets would still count against its socket (TCP small queues: ~2 packets in the host at a time), 2 packets
    per 300 ms, minutes; held where they arrive, the sender sees a slow link and fills it."""
    proc = pair.start(300)
    server = netlink.in_namespace(pair.receiver, lambda: bind("sink", 0, RECEIVER))
    received: list[int] = []

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            got = 0
            while chunk := conn.recv(1 << 16):
                got += len(chunk)
            received.append(got)

    reader = threading.Thread(target=sink)
    reader.start()
    with server, netlink.in_namespace(pair.sender, lambda: socket.create_connection(server.getsockname(), 30)) as out:
        started = time.monotonic()
        out.sendall(b"x" * 2_000_000)
    reader.join(timeout=60)
    seconds = time.monotonic() - started
    delayer.stop(proc)
    netlink.remove_queue_rule(pair.receiver, SENDER)
    assert received == [2_000_000]
    assert 0.3 <= seconds < 15, seconds


def test_corrupted_packets_fail_the_receivers_checksum_and_tcp_sends_them_again(pair):
    """10% of the packets with one bit flipped past the IP header: the receiving TCP finds each one's checksum wrong
    (the kernel marks a packet changed through the queue CHECKSUM_NONE, so it is checked in full, offload or not)
    and drops it, the sender resends, and what arrives is what was sent. Without the fault: no checksum error."""
    data = random.Random(3).randbytes(1_000_000)
    before = snmp(pair.receiver, "Tcp")
    clean, _ = send_through(pair, data)
    after_clean = snmp(pair.receiver, "Tcp")
    proc = pair.start(0, corrupt_percent=10)
    sent_before = snmp(pair.sender, "Tcp")
    corrupted, seconds = send_through(pair, data)
    netlink.remove_queue_rule(pair.receiver, SENDER)
    delayer.stop(proc)  # every packet it flipped reached the receiving TCP within its verdict's send: counted now
    after = snmp(pair.receiver, "Tcp")
    sent_after = snmp(pair.sender, "Tcp")
    assert clean == data and corrupted == data
    assert after_clean["InCsumErrors"] == before["InCsumErrors"]
    # ~700 segments of 1,448 bytes (the kernel cut the GSO packets to copy them), ~70 of them corrupted: each one
    # dropped by the receiving TCP as a checksum error, and sent again. (A flip in the 4 bits of the header's data
    # offset, 1 in ~2,900 flips, is dropped before the checksum is looked at: a shortfall of 1 or 2 is allowed.)
    flipped = int(re.findall(r"(\d+) corrupted", pair.logs.read_text())[-1])
    assert flipped >= 20, pair.logs.read_text()
    errors = after["InCsumErrors"] - after_clean["InCsumErrors"]
    assert flipped - 2 <= errors <= flipped, (flipped, after_clean, after)
    # resent: not one for one (a corrupted pure ACK is not resent, and one resend may carry two lost segments)
    resent = sent_after["RetransSegs"] - sent_before["RetransSegs"]
    assert resent >= flipped // 2, (flipped, sent_before, sent_after)
    assert seconds < 30, seconds
    assert "NFQUEUE" not in netlink.queue_rules(pair.receiver)
    assert proc.returncode == 0


def test_a_copied_packet_handed_back_unchanged_passes_the_receivers_checksum(pair):
    """What corruption stands on: a queue in copy mode hands over segments whose checksum is filled in (the kernel
    completes the one veth's offload left open), so a packet handed back as it came passes the full check its
    CHECKSUM_NONE mark asks for; only the flipped bit makes the checksum fail."""
    queue = netlink.in_namespace(pair.receiver, lambda: nfqueue.Queue(netlink.DELAY_QUEUE, copy=True))
    netlink.add_queue_rule(pair.receiver, SENDER)
    stop, through = threading.Event(), []

    def hand_back() -> None:
        while not stop.is_set():
            select.select([queue.fileno()], [], [], 0.05)
            packets = queue.receive()
            through.extend(len(packet.data) for packet in packets)
            queue.accept((packet.id, packet.data) for packet in packets)

    worker = threading.Thread(target=hand_back)
    worker.start()
    data = random.Random(4).randbytes(1_000_000)
    try:
        before = snmp(pair.receiver, "Tcp")
        arrived, _ = send_through(pair, data)
        after = snmp(pair.receiver, "Tcp")
    finally:
        netlink.remove_queue_rule(pair.receiver, SENDER)
        stop.set()
        worker.join()
        queue.close()
    assert arrived == data
    assert after["InCsumErrors"] == before["InCsumErrors"]
    assert len(through) >= 690 and max(through) <= 1500, (len(through), max(through))  # segments, not GSO packets
