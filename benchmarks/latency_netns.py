"""Benchmark: a latency fault made in the network layer by the netns runtime, and what making it costs.

The fragile topology runs with ``--runtime netns``; dc-west calls auth-east's /healthz ``--calls`` times on one
keep-alive connection, without a fault and with ``latency: {from: dc-west, to: dc-east, ms: 300}``. The figure is
the median call with the fault less the median without. Where the kernel has no netem the fault is an NFQUEUE
rule and a delayer process (chaos.runtime.delayer): its CPU time is read over those calls and over a bulk
transfer through it (``--bulk-mb`` from dc-west to dc-east), per packet queued (the rule's counter).

    .venv/bin/python benchmarks/latency_netns.py [--calls 40 --bulk-mb 4]     (needs root, iproute2, nftables)

Goals: added delay 300..345 ms (at least the fault, at most 15% over it); delayer CPU < 0.5 ms per packet (a core
keeps 2,000 packets/s waiting). Prints, saves JSON, exits 1 if missed; exits 2 with a reason when this machine
cannot make namespaces or delay packets.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from support import results
from support.stack import PROJECT, topology

from chaos.runtime import netlink
from chaos.runtime.netns import NetnsRuntime
from chaos.runtime.sockets import bind

MS = 300
ADDED_GOAL_MS = (MS, MS * 1.15)
CPU_PER_PACKET_GOAL_MS = 0.5


def timed_calls(namespace: str, url: str, calls: int) -> list[float]:
    def call() -> list[float]:
        took = []
        with httpx.Client(timeout=10) as client:
            client.get(url).raise_for_status()  # opens the connection: not timed
            for _ in range(calls):
                started = time.monotonic()
                client.get(url).raise_for_status()
                took.append(time.monotonic() - started)
        return took

    return netlink.in_namespace(namespace, call)


def bulk(source: str, target: str, address: str, size: int) -> float:
    """Seconds to send ``size`` bytes from ``source`` to a sink in ``target``."""
    server = netlink.in_namespace(target, lambda: bind("sink", 0, address))

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            while conn.recv(1 << 16):
                pass

    reader = threading.Thread(target=sink)
    reader.start()
    started = time.monotonic()
    with server, netlink.in_namespace(source, lambda: socket.create_connection(server.getsockname(), 10)) as out:
        out.sendall(b"x" * size)
    reader.join(timeout=120)
    return time.monotonic() - started


def queued_packets(namespace: str) -> int:
    """Packets the delay's rule queued so far (it sits in the receiving namespace's INPUT chain)."""
    rows = netlink.run("ip", "netns", "exec", namespace, "iptables-nft", "-L", "INPUT", "-v", "-x", "-n")
    return sum(int(row.split()[0]) for row in rows.splitlines() if "NFQUEUE" in row)


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--bulk-mb", type=float, default=4.0)
    args = parser.parse_args()
    if not 5 <= args.calls <= 500 or not 0 < args.bulk_mb <= 64:
        parser.error("--calls must be 5..500 and --bulk-mb 0..64")
    if why := netlink.why_unsupported():
        print(why, file=sys.stderr)
        return 2
    begun = time.monotonic()
    topo = topology("fragile").with_any_ports()
    with tempfile.TemporaryDirectory(prefix="blackout-bench-") as scratch:
        runtime = NetnsRuntime(topo, Path(scratch) / "run", profile=PROJECT / "profiles" / "naive.yaml")
        with runtime:
            if not runtime.delay_layer:
                print("this kernel can delay no packets (neither netem nor NFQUEUE)", file=sys.stderr)
                return 2
            west, east = runtime.namespaces["dc-west"], runtime.namespaces["dc-east"]
            url = runtime.topology.url("auth-east") + "/healthz"
            calm = timed_calls(west, url, args.calls)
            how = runtime.delay("bench", "dc-west", "dc-east", MS)
            try:
                pid = int(how["delayer"]) if how["via"] == "nfqueue" else None
                cpu_before = cpu_seconds(pid) if pid else 0.0
                delayed = timed_calls(west, url, args.calls)
                cpu_calls = (cpu_seconds(pid) if pid else 0.0) - cpu_before
                packets_calls = queued_packets(east) if pid else 0
                bulk_s = bulk(west, east, runtime.topology.address("dc-east"), int(args.bulk_mb * 1e6))
                cpu_all = (cpu_seconds(pid) if pid else 0.0) - cpu_before
                packets_all = queued_packets(east) if pid else 0
            finally:
                runtime.repair("bench")
    added_ms = (statistics.median(delayed) - statistics.median(calm)) * 1000
    per_packet_ms = cpu_all * 1000 / packets_all if packets_all else float("inf")  # none counted: no figure
    figures = {
        "via": how["via"],
        "calls": args.calls,
        "calm_ms_median": round(statistics.median(calm) * 1000, 1),
        "delayed_ms_median": round(statistics.median(delayed) * 1000, 1),
        "delayed_ms_range": [round(min(delayed) * 1000, 1), round(max(delayed) * 1000, 1)],
        "added_ms_median": round(added_ms, 1),
        "delayer_cpu_s_calls": round(cpu_calls, 3),
        "packets_calls": packets_calls,
        "bulk_mb": args.bulk_mb,
        "bulk_s": round(bulk_s, 2),
        "delayer_cpu_s_total": round(cpu_all, 3),
        "packets_total": packets_all,
        "delayer_cpu_ms_per_packet": round(per_packet_ms, 3),
        "delayer_cpu_share_of_bulk": round((cpu_all - cpu_calls) / bulk_s, 3) if bulk_s else None,
    }
    print(
        f"via {how['via']}: calls {figures['calm_ms_median']} ms -> {figures['delayed_ms_median']} ms median "
        f"(range {figures['delayed_ms_range']}); bulk {args.bulk_mb:g} MB in {bulk_s:.2f} s; delayer CPU "
        f"{cpu_all:.3f} s for {packets_all} packets ({per_packet_ms:.3f} ms each)"
    )
    checks = [
        (
            "added delay, 300-ms fault",
            f"{added_ms:.0f} ms",
            f"{ADDED_GOAL_MS[0]}..{ADDED_GOAL_MS[1]:g} ms",
            ADDED_GOAL_MS[0] <= added_ms <= ADDED_GOAL_MS[1],
        ),
    ]
    if how["via"] == "nfqueue":
        checks.append(
            (
                "delayer CPU per packet",
                f"{per_packet_ms:.3f} ms",
                f"< {CPU_PER_PACKET_GOAL_MS} ms",
                per_packet_ms < CPU_PER_PACKET_GOAL_MS,
            )
        )
    return results.conclude("latency_netns", figures, checks, begun)


if __name__ == "__main__":
    sys.exit(main())
