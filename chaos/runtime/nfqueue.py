"""A netfilter queue (NFQUEUE) client: the packets a rule queues are handed to this process, which says when each
may go on (its verdict), and may hand back a changed packet with it. chaos.runtime.delayer holds each for a while
(latency without netem), or flips a bit of some (corruption without netem).

Hand-written over a raw AF_NETLINK/NETLINK_NETFILTER socket rather than a library: NetfilterQueue is an sdist
that needs libnetfilter_queue's headers and a C compiler, and fnfqueue's wheels stop at CPython 3.11 (no release
since 2023) while this project runs on 3.11 and later; the part needed here is four message layouts
(<linux/netfilter/nfnetlink_queue.h>): bind a queue, choose what is copied, read packets, send verdicts (with the
packet's new bytes, NFQA_PAYLOAD, when it was changed).
"""

from __future__ import annotations

import errno
import os
import random
import socket
import struct
from collections.abc import Iterable
from typing import NamedTuple

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQA_CFG_F_GSO = 0x4  # a GSO packet queued whole, as netem holds it, rather than cut into segments first
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NFQNL_COPY_META = 1  # the packet's id and metadata, none of its bytes: a delay needs no more
NFQNL_COPY_PACKET = 2  # and its bytes, from the IP header on, up to the copy range
COPY_RANGE = 0xFFFF  # the most the kernel copies: a whole packet (GSO ones are cut into segments first, see Queue)
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NLMSG = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, port id (host order)
NFGENMSG = struct.Struct("!BBH")  # family, version, queue number (network order)
NLATTR = struct.Struct("=HH")  # length, type
MAX_QUEUED = 16384  # the kernel's queue length (default 1024): at 300 ms a busy link holds more packets than that
RECEIVE_BUFFER = 8 << 20  # a burst of packet messages must not overflow the socket (the kernel drops those)
MESSAGE_MAX = 1 << 17  # one packet message with its bytes (<= 64 KiB and headers): a recv must not cut it
SEND_MAX = 1 << 16  # verdicts per datagram, in bytes: a netlink send larger than the socket's buffer fails


class NfqueueError(OSError):
    """The kernel refused a queue command (the message names which and why)."""


def _attribute(kind: int, payload: bytes) -> bytes:
    size = NLATTR.size + len(payload)
    return NLATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


def _message(kind: int, queue: int, attributes: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + attributes
    return NLMSG.pack(NLMSG.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


class Packet(NamedTuple):
    """A queued packet: its id, and its bytes from the IP header on (b"" when only the metadata is copied)."""

    id: int
    data: bytes


def verdict(queue: int, packet_id: int, decision: int = NF_ACCEPT, data: bytes | None = None) -> bytes:
    """The verdict on one packet; with ``data``, the packet goes on as these bytes instead (the kernel then marks
    it CHECKSUM_NONE, so the receiver checks its transport checksum in full)."""
    attributes = _attribute(NFQA_VERDICT_HDR, struct.pack("!II", decision, packet_id))
    if data is not None:
        attributes += _attribute(NFQA_PAYLOAD, data)
    return _message(NFQNL_MSG_VERDICT, queue, attributes)


def packets(data: bytes) -> list[Packet]:
    """The queued packets in one datagram from the kernel (it may carry several messages)."""
    found, offset = [], 0
    while offset + NLMSG.size <= len(data):
        length, kind, _, _, _ = NLMSG.unpack_from(data, offset)
        if length < NLMSG.size:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            packet_id, payload = None, b""
            at, end = offset + NLMSG.size + NFGENMSG.size, offset + length
            while at + NLATTR.size <= end:
                size, attr = NLATTR.unpack_from(data, at)
                if size < NLATTR.size:
                    break
                if attr & 0x7FFF == NFQA_PACKET_HDR:
                    packet_id = struct.unpack_from("!I", data, at + NLATTR.size)[0]
                elif attr & 0x7FFF == NFQA_PAYLOAD:
                    payload = data[at + NLATTR.size : at + size]
                at += (size + 3) & ~3
            if packet_id is not None:
                found.append(Packet(packet_id, payload))
        offset += (length + 3) & ~3
    return found


def flip_bit(packet: bytes, rng: random.Random) -> bytes:
    """``packet`` (IPv4, from its header on) with one random bit flipped past the IP header, where the transport's
    checksum covers it: at INPUT the kernel has checked the IP header already, so a bit flipped there would go
    unnoticed. A packet with nothing past its header comes back unchanged."""
    header = (packet[0] & 0x0F) * 4 if packet else 0
    if len(packet) <= header:
        return packet
    at = rng.randrange(header, len(packet))
    return packet[:at] + bytes([packet[at] ^ (1 << rng.randrange(8))]) + packet[at + 1 :]


class Queue:
    """Queue ``number`` of the calling thread's network namespace, bound to this socket until ``close``.

    ``copy``: each packet's bytes come too (``Packet.data``), to be changed. The kernel then cuts a GSO packet into
    its segments before queueing them (each a packet on the wire, as netem's corrupt cuts them) and fills in the
    checksum a segment left to the (virtual) NIC, so the bytes seen here carry the checksum the receiver checks.
    Without it only ids come, and GSO packets are held whole, as netem holds them."""

    def __init__(self, number: int, *, copy: bool = False) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, RECEIVE_BUFFER)  # SO_RCVBUFFORCE: root may pass rmem_max
            self.sock.bind((0, 0))
            self._seq = 0
            self._early: list[Packet] = []  # packets queued while it was still being configured (a rule already there)
            self._command(_attribute(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET)), "bind")
            mode = struct.pack("!IB", COPY_RANGE, NFQNL_COPY_PACKET) if copy else struct.pack("!IB", 0, NFQNL_COPY_META)
            self._command(_attribute(NFQA_CFG_PARAMS, mode), "copy mode")
            self._command(_attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", MAX_QUEUED)), "queue length")
            if not copy:
                flags = struct.pack("!I", NFQA_CFG_F_GSO)
                self._command(_attribute(NFQA_CFG_MASK, flags) + _attribute(NFQA_CFG_FLAGS, flags), "whole GSO packets")
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> list[Packet]:
        """Every packet queued so far (none waiting: [])."""
        found, self._early = self._early, []
        while True:
            try:
                found += packets(self.sock.recv(MESSAGE_MAX))
            except BlockingIOError:
                return found
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:  # messages lost: the kernel dropped those packets already
                    raise

    def accept(self, going: Iterable[tuple[int, bytes | None]]) -> None:
        """Let these packets (id, new bytes or None: unchanged) go on, in any order: a datagram carries many
        verdicts, up to SEND_MAX bytes of them."""
        batch: list[bytes] = []
        size = 0
        for packet_id, data in going:
            message = verdict(self.number, packet_id, data=data)
            if batch and size + len(message) > SEND_MAX:
                self.sock.send(b"".join(batch))
                batch, size = [], 0
            batch.append(message)
            size += len(message)
        if batch:
            self.sock.send(b"".join(batch))

    def close(self) -> None:
        """Unbinding drops what is still queued (accept it first); a socket closed by a dying process does too."""
        self.sock.close()

    def _command(self, attributes: bytes, what: str) -> None:
        self._seq += 1
        self.sock.send(_message(NFQNL_MSG_CONFIG, self.number, attributes, NLM_F_REQUEST | NLM_F_ACK, self._seq))
        while True:  # the kernel's answer, an error message with our sequence number (0: done)
            answer = self.sock.recv(MESSAGE_MAX)
            _, kind, _, seq, _ = NLMSG.unpack_from(answer)
            if kind == NLMSG_ERROR and seq == self._seq:
                break
            self._early += packets(answer)
        code = struct.unpack_from("=i", answer, NLMSG.size)[0]
        if code:
            raise NfqueueError(-code, f"NFQUEUE {what} on queue {self.number}: {os.strerror(-code)}")
