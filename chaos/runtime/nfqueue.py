"""A netfilter queue (NFQUEUE) client: the packets a rule queues are handed to this process, which says when each
may go on (its verdict). chaos.runtime.delayer holds each for a while: latency without netem.

Hand-written over a raw AF_NETLINK/NETLINK_NETFILTER socket rather than a library: NetfilterQueue is an sdist
that needs libnetfilter_queue's headers and a C compiler, and fnfqueue's wheels stop at CPython 3.11 (no release
since 2023) while this project runs on 3.11 and later; the part needed here is four message layouts
(<linux/netfilter/nfnetlink_queue.h>): bind a queue, ask for the metadata only, read packet ids, send verdicts.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQA_CFG_F_GSO = 0x4  # a GSO packet queued whole, as netem holds it, rather than cut into segments first
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_COPY_META = 1  # the packet's id and metadata, none of its bytes: a delay needs no more
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NLMSG = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, port id (host order)
NFGENMSG = struct.Struct("!BBH")  # family, version, queue number (network order)
NLATTR = struct.Struct("=HH")  # length, type
MAX_QUEUED = 16384  # the kernel's queue length (default 1024): at 300 ms a busy link holds more packets than that
RECEIVE_BUFFER = 8 << 20  # a burst of packet messages must not overflow the socket (the kernel drops those)


class NfqueueError(OSError):
    """The kernel refused a queue command (the message names which and why)."""


def _attribute(kind: int, payload: bytes) -> bytes:
    size = NLATTR.size + len(payload)
    return NLATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


def _message(kind: int, queue: int, attributes: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + attributes
    return NLMSG.pack(NLMSG.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


def verdict(queue: int, packet_id: int, decision: int = NF_ACCEPT) -> bytes:
    return _message(NFQNL_MSG_VERDICT, queue, _attribute(NFQA_VERDICT_HDR, struct.pack("!II", decision, packet_id)))


def packet_ids(data: bytes) -> list[int]:
    """The ids of the queued packets in one datagram from the kernel (it may carry several messages)."""
    ids, offset = [], 0
    while offset + NLMSG.size <= len(data):
        length, kind, _, _, _ = NLMSG.unpack_from(data, offset)
        if length < NLMSG.size:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            at, end = offset + NLMSG.size + NFGENMSG.size, offset + length
            while at + NLATTR.size <= end:
                size, attr = NLATTR.unpack_from(data, at)
                if size < NLATTR.size:
                    break
                if attr & 0x7FFF == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, at + NLATTR.size)[0])
                at += (size + 3) & ~3
        offset += (length + 3) & ~3
    return ids


class Queue:
    """Queue ``number`` of the calling thread's network namespace, bound to this socket until ``close``."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, RECEIVE_BUFFER)  # SO_RCVBUFFORCE: root may pass rmem_max
            self.sock.bind((0, 0))
            self._seq = 0
            self._early: list[int] = []  # packets queued while it was still being configured (a rule already there)
            self._command(_attribute(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET)), "bind")
            self._command(_attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)), "copy mode")
            self._command(_attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", MAX_QUEUED)), "queue length")
            flags = struct.pack("!I", NFQA_CFG_F_GSO)
            self._command(_attribute(NFQA_CFG_MASK, flags) + _attribute(NFQA_CFG_FLAGS, flags), "whole GSO packets")
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> list[int]:
        """The ids of every packet queued so far (none waiting: [])."""
        ids, self._early = self._early, []
        while True:
            try:
                ids += packet_ids(self.sock.recv(65536))
            except BlockingIOError:
                return ids
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:  # messages lost: the kernel dropped those packets already
                    raise

    def accept(self, ids: Iterable[int]) -> None:
        """Let these packets go on, in any order: one datagram carries many verdicts."""
        batch = b"".join(verdict(self.number, packet_id) for packet_id in ids)
        if batch:
            self.sock.send(batch)

    def close(self) -> None:
        """Unbinding drops what is still queued (accept it first); a socket closed by a dying process does too."""
        self.sock.close()

    def _command(self, attributes: bytes, what: str) -> None:
        self._seq += 1
        self.sock.send(_message(NFQNL_MSG_CONFIG, self.number, attributes, NLM_F_REQUEST | NLM_F_ACK, self._seq))
        while True:  # the kernel's answer, an error message with our sequence number (0: done)
            answer = self.sock.recv(65536)
            _, kind, _, seq, _ = NLMSG.unpack_from(answer)
            if kind == NLMSG_ERROR and seq == self._seq:
                break
            self._early += packet_ids(answer)
        code = struct.unpack_from("=i", answer, NLMSG.size)[0]
        if code:
            raise NfqueueError(-code, f"NFQUEUE {what} on queue {self.number}: {os.strerror(-code)}")
