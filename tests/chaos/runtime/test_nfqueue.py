"""The queue client's message layouts and the bit flip, byte by byte (the kernel's side: test_delayer.py)."""

from __future__ import annotations

import random
import socket
import struct

from chaos.runtime import nfqueue

IP_HEADER = bytes([0x45]) + bytes(19)  # version 4, 5 words: 20 bytes, no options


def kernel_packet_message(packet_id: int, data: bytes, queue: int = 7) -> bytes:
    """One NFQNL_MSG_PACKET as the kernel sends it: nlmsghdr, nfgenmsg, NFQA_PACKET_HDR (id, protocol, hook), a
    mark, and the packet's bytes (NFQA_PAYLOAD), each attribute padded to 4 bytes."""

    def attribute(kind: int, payload: bytes) -> bytes:
        return struct.pack("=HH", 4 + len(payload), kind) + payload + bytes(-len(payload) % 4)

    body = struct.pack("!BBH", socket.AF_INET, 0, queue)
    body += attribute(1, struct.pack("!IHB", packet_id, 0x0800, 1))  # NFQA_PACKET_HDR: id, ETH_P_IP, NF_INET_LOCAL_IN
    body += attribute(3, struct.pack("!I", 0))  # NFQA_MARK: an attribute the client skips
    if data:
        body += attribute(10, data)
    return struct.pack("=IHHII", 16 + len(body), (3 << 8) | 0, 0, 0, 0) + body


def test_packets_reads_ids_and_bytes_of_every_message_in_a_datagram():
    first, second = IP_HEADER + b"abcde", IP_HEADER + bytes(range(7))
    datagram = kernel_packet_message(41, first) + kernel_packet_message(42, second) + kernel_packet_message(43, b"")
    assert nfqueue.packets(datagram) == [
        nfqueue.Packet(41, first),
        nfqueue.Packet(42, second),
        nfqueue.Packet(43, b""),  # copy mode "meta": no bytes
    ]


def test_a_verdict_with_new_bytes_carries_them_as_its_payload_attribute():
    data = IP_HEADER + b"xyz"  # 23 bytes: with its 4-byte header the attribute is 27, padded to 28
    message = nfqueue.verdict(9, 1234, data=data)
    length, kind, flags, _, _ = struct.unpack_from("=IHHII", message)
    assert (length, kind, flags) == (len(message), (3 << 8) | 1, nfqueue.NLM_F_REQUEST)
    assert struct.unpack_from("!BBH", message, 16) == (socket.AF_UNSPEC, 0, 9)
    assert struct.unpack_from("=HH", message, 20) == (12, 2)  # NFQA_VERDICT_HDR
    assert struct.unpack_from("!II", message, 24) == (nfqueue.NF_ACCEPT, 1234)
    assert struct.unpack_from("=HH", message, 32) == (4 + len(data), 10)  # NFQA_PAYLOAD, its length unpadded
    assert message[36 : 36 + len(data)] == data
    assert len(message) == 32 + 28 and message[36 + len(data) :] == b"\0"
    plain = nfqueue.verdict(9, 1234)  # unchanged: no payload attribute at all
    assert struct.unpack_from("=I", plain) == (32,) and plain[4:] == message[4:32]


def flipped_bits(before: bytes, after: bytes) -> list[int]:
    return [
        i * 8 + bit
        for i, (a, b) in enumerate(zip(before, after, strict=True))
        for bit in range(8)
        if (a ^ b) >> bit & 1
    ]


def test_flip_bit_flips_exactly_one_bit_past_the_ip_header_anywhere_there():
    rng = random.Random(1)
    for header_words in (5, 7):  # without and with IP options
        packet = bytes([0x40 | header_words]) + bytes(header_words * 4 - 1) + bytes(range(40))
        spots = set()
        for _ in range(2000):
            changed = nfqueue.flip_bit(packet, rng)
            (spot,) = flipped_bits(packet, changed)
            spots.add(spot)
        assert min(spots) >= header_words * 32  # never in the IP header: its checksum was checked already
        assert len(spots) == 40 * 8  # every bit of the transport's part can be hit


def test_flip_bit_leaves_a_packet_with_nothing_past_its_header_alone():
    assert nfqueue.flip_bit(IP_HEADER, random.Random(1)) == IP_HEADER
    assert nfqueue.flip_bit(b"", random.Random(1)) == b""
