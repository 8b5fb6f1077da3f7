"""Benchmark: a corruption fault made in the network layer by the netns runtime, what it does and what it costs.

The fragile topology runs with ``--runtime netns``; dc-west calls auth-east's /healthz ``--calls`` times on one
keep-alive connection and sends ``--bulk-mb`` to a sink in dc-east, without a fault and with ``corruption: {from:
dc-west, to: dc-east, percent: --percent}``. Where the kernel has no netem the fault is an NFQUEUE rule and a delayer
process copying every packet and flipping a bit of that share (chaos.runtime.delayer): its CPU time per packet it
saw and the bits it flipped (its log's last line: the kernel hands it segments, while the rule's counter counts the
GSO packets before they are cut), the flips against dc-east's TCP checksum errors.

    .venv/bin/python benchmarks/corruption_netns.py [--percent 5 --calls 40 --bulk-mb 4]   (needs root, iproute2)

Goals: every call and the transfer succeed (TCP resends what the receiver dropped); dc-east counts a checksum error
for at least 95% of the flips (a flip in TCP's data offset is dropped uncounted); delayer CPU < 0.5 ms per packet.
Prints, saves JSON, exits 1 if missed; exits 2 with a reason when this machine cannot make namespaces or corrupt
packets.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from latency_netns import CPU_PER_PACKET_GOAL_MS, bulk, cpu_seconds, timed_calls
from support import results
from support.stack import PROJECT, topology

from chaos.runtime import netlink
from chaos.runtime.netns import NetnsRuntime

COUNTED_GOAL = 0.95  # checksum errors per flip


def checksum_errors(namespace: str) -> int:
    """dc-east's TCP checksum errors so far (/proc/net/snmp inside its namespace)."""
    rows = [row.split() for row in netlink.run("ip", "netns", "exec", namespace, "cat", "/proc/net/snmp").splitlines()]
    names, values = (row[1:] for row in rows if row and row[0] == "Tcp:")
    return int(values[names.index("InCsumErrors")])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--percent", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--bulk-mb", type=float, default=4.0)
    args = parser.parse_args()
    if not 0 < args.percent <= 50 or not 5 <= args.calls <= 500 or not 0 < args.bulk_mb <= 64:
        parser.error("--percent must be in (0, 50], --calls 5..500 and --bulk-mb 0..64")
    if why := netlink.why_unsupported():
        print(why, file=sys.stderr)
        return 2
    begun = time.monotonic()
    size = int(args.bulk_mb * 1e6)
    with tempfile.TemporaryDirectory(prefix="blackout-bench-") as scratch:
        runtime = NetnsRuntime(
            topology("fragile").with_any_ports(), Path(scratch) / "run", profile=PROJECT / "profiles" / "naive.yaml"
        )
        with runtime:
            if not runtime.delay_layer:
                print("this kernel can corrupt no packets (neither netem nor NFQUEUE)", file=sys.stderr)
                return 2
            west, east = runtime.namespaces["dc-west"], runtime.namespaces["dc-east"]
            url, address = runtime.topology.url("auth-east") + "/healthz", runtime.topology.address("dc-east")
            calm, calm_bulk_s = timed_calls(west, url, args.calls), bulk(west, east, address, size)
            errors_before = checksum_errors(east)
            how = runtime.corrupt("bench", "dc-west", "dc-east", args.percent)
            try:
                pid = int(how["delayer"]) if how["via"] == "nfqueue" else None
                cpu_before = cpu_seconds(pid) if pid else 0.0
                corrupted = timed_calls(west, url, args.calls)
                bulk_s = bulk(west, east, address, size)
                cpu = (cpu_seconds(pid) if pid else 0.0) - cpu_before
            finally:
                runtime.repair("bench")  # the delayer stops: its log's last line says how many it flipped
            errors = checksum_errors(east) - errors_before
            log = runtime.run_dir / "logs" / "delayer-dc-west-dc-east.log"
            counts = re.findall(r"(\d+) packets, (\d+) corrupted", log.read_text()) if pid else []
    packets, flipped = (int(counts[-1][0]), int(counts[-1][1])) if counts else (0, 0)
    per_packet_ms = cpu * 1000 / packets if packets else float("inf")  # none counted: no figure
    figures = {
        "via": how["via"],
        "percent": args.percent,
        "calls": args.calls,
        "calm_ms_median": round(statistics.median(calm) * 1000, 1),
        "corrupted_ms_median": round(statistics.median(corrupted) * 1000, 1),
        "corrupted_ms_max": round(max(corrupted) * 1000, 1),
        "bulk_mb": args.bulk_mb,
        "calm_bulk_s": round(calm_bulk_s, 3),
        "corrupted_bulk_s": round(bulk_s, 3),
        "packets": packets,
        "flipped": flipped,
        "checksum_errors": errors,
        "delayer_cpu_s": round(cpu, 3),
        "delayer_cpu_ms_per_packet": round(per_packet_ms, 4),
    }
    print(
        f"via {how['via']}, {args.percent:g}%: calls {figures['calm_ms_median']} ms -> "
        f"{figures['corrupted_ms_median']} ms median (max {figures['corrupted_ms_max']} ms); bulk {args.bulk_mb:g} MB "
        f"{calm_bulk_s:.3f} s -> {bulk_s:.3f} s; {flipped} of {packets} packets flipped, {errors} checksum errors; "
        f"delayer CPU {cpu:.3f} s ({per_packet_ms:.4f} ms a packet)"
    )
    checks = [("checksum errors at dc-east", str(errors), "> 0", errors > 0)]
    if how["via"] == "nfqueue":
        checks += [
            (
                "flips counted as checksum errors",
                f"{errors} of {flipped}",
                f">= {COUNTED_GOAL:.0%}",
                flipped > 0 and COUNTED_GOAL * flipped <= errors <= flipped,
            ),
            (
                "delayer CPU per packet",
                f"{per_packet_ms:.4f} ms",
                f"< {CPU_PER_PACKET_GOAL_MS} ms",
                per_packet_ms < CPU_PER_PACKET_GOAL_MS,
            ),
        ]
    return results.conclude("corruption_netns", figures, checks, begun)


if __name__ == "__main__":
    sys.exit(main())
