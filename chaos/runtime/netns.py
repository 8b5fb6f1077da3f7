"""Data centers as machines: each data center is a network namespace of its own, joined to the others by a link.

Layout (``P`` is a random prefix per stack, so parallel stacks never collide)::

    host  --P-h (10.231.N.1)--+
                              |  bridge "wan" in namespace P-wan
    P-dc-east  wan0 (10.231.N.10) --+
    P-dc-west  wan0 (10.231.N.11) --+

Every data center has its own address and loopback; its instances listen on its address and reach their
dependencies at the other data center's address, across the WAN bridge. The host (the controller, the users'
edge, Prometheus) reaches every data center through its own link to the bridge. The bridge sits in a namespace
of its own so the host's firewall (Docker's FORWARD policy, br_netfilter) never sees the traffic between
data centers, and because removing the namespaces removes every link, bridge, qdisc and nftables rule with them.

Power off = the data center's link down (its packets dropped: keep-alive connections stall mid-request, SYNs
go unanswered, nothing is refused, as with a dead host) and SIGKILL to its process group. Network faults act on
a data center's link whatever the application does: ``impair`` (tc htb rate limits, and netem delay, jitter,
corruption where the kernel has netem), ``delay`` and ``corrupt`` (latency and jitter, bit flips: netem, or where
the kernel has none, an NFQUEUE rule and a delayer process in the receiving namespace, chaos.runtime.delayer) and
``block`` (nftables drops in the namespace: partitions, one-way blackholes, random loss). Ownership and cleanup
after a dead controller: chaos/runtime/netns_owner.py.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from chaos.journal import Journal
from chaos.runtime import delayer, netlink, netns_owner, watcher
from chaos.runtime.base import KILL, LINKS, NETWORK, POWER, PowerEvent, RuntimeError_
from chaos.runtime.local import LocalRuntime
from chaos.runtime.sockets import bind
from chaos.topology import Topology
from services.common.errors import UsageError

WAN = "wan"  # the bridge, and the suffix of its namespace
DC_LINK = "wan0"  # a data center's end of its link (each namespace has its own names)
HOST_ADDRESS = 1  # 10.231.N.1: the host's end
FIRST_DC_ADDRESS = 10


class NetnsRuntime(LocalRuntime):
    name = "netns"
    capabilities = frozenset({POWER, KILL, LINKS, NETWORK})

    def __init__(
        self,
        topology: Topology,
        run_dir: Path,
        *,
        profile: Path | None = None,
        journal: Journal | None = None,
        health_timeout_s: float = 60.0,
    ) -> None:
        super().__init__(topology, run_dir, profile=profile, journal=journal, health_timeout_s=health_timeout_s)
        self.use_zygote = True  # instances join their namespace in the zygote's child, before they start
        self.prefix = f"bo{secrets.token_hex(3)}"  # <= 15-char link names: "bo" + 6 hex + "h"
        dcs = list(topology.data_centers)
        self.namespaces = {dc: f"{self.prefix}-{dc}" for dc in dcs}
        self.wan_namespace = f"{self.prefix}-{WAN}"
        self.host_link = f"{self.prefix}h"
        self._ports = {dc: f"dc{i}" for i, dc in enumerate(dcs)}  # each data center's port on the bridge
        self.host_address = ""  # the host's end of the WAN (the controller, the users' edge, Prometheus)
        self.netem = False  # whether the kernel has netem (probed at up): delay and jitter in the kernel
        # how `delay` makes latency and `corrupt` corruption (probed at up): "netem", "nfqueue" (a delayer process
        # per queued link), or "" (neither: the services' client delays the calls, and corruption is refused)
        self.delay_layer = ""
        self.network_seconds = 0.0  # how long `up` took to build the network (docs/benchmarks.md)
        self._record: netns_owner.OwnerRecord | None = None
        self._watcher: subprocess.Popen[bytes] | None = None
        self._net_lock = threading.Lock()
        self._impaired: dict[str, tuple[str, str]] = {}  # fault -> (source, to): one qdisc per link
        self._delayers: dict[str, tuple[str, str, subprocess.Popen[str]]] = {}  # fault -> (source, to, its process)
        self._queues = {dc: netlink.DELAY_QUEUE + i for i, dc in enumerate(dcs)}  # a queue per source data center
        self._drops: dict[str, dict[str, list[str]]] = {}  # fault -> data center -> its nft rules

    # -- lifecycle -------------------------------------------------------------------------------
    def up(self) -> None:
        if why := netlink.why_unsupported():
            raise RuntimeError_(why)
        started = time.monotonic()
        self._build_network()
        self.network_seconds = time.monotonic() - started
        super().up()

    def down(self) -> None:
        try:
            super().down()
        finally:
            self._tear_down_network()

    def power_off(self, dc: str) -> PowerEvent:
        self.topology.require_dc(dc)
        started = time.monotonic()
        # The link first: from this moment nothing leaves or reaches the data center, as when a host dies.
        netlink.set_link(self.wan_namespace, self._ports[dc], up=False)
        event = super().power_off(dc)
        return replace(event, seconds=time.monotonic() - started)

    def power_on(self, dc: str, boot_order: list[str] | None = None, stagger_s: float = 0.0) -> PowerEvent:
        self.topology.require_dc(dc)
        if self.powered().get(dc):
            raise RuntimeError_(f"{dc} is already powered on")
        started = time.monotonic()
        netlink.set_link(self.wan_namespace, self._ports[dc], up=True)
        netlink.wait_operstate_up([(self.wan_namespace, self._ports[dc]), (self.namespaces[dc], DC_LINK)])
        event = super().power_on(dc, boot_order, stagger_s)
        return replace(event, seconds=time.monotonic() - started)

    def link_up(self, dc: str) -> bool:
        return netlink.link_is_up(self.wan_namespace, self._ports[dc])

    # -- network faults --------------------------------------------------------------------------
    def impair(
        self, fault_id: str, source: str, to: str, *, rate: str = netlink.UNLIMITED, netem: Sequence[str] = ()
    ) -> None:
        """Shape what ``source`` sends to ``to``'s address: a rate limit (tc htb, e.g. "1mbit") and/or netem
        (e.g. ["delay", "300ms", "100ms"], ["corrupt", "1%"]; needs a kernel with netem, see ``netem``). Its
        calls wait going out, their answers coming back. One shaping per data center's link at a time."""
        for dc in (source, to):
            self.topology.require_dc(dc)
        if netem and not self.netem:
            raise RuntimeError_("this kernel has no netem (sch_netem): delay, jitter and corruption cannot be made")
        with self._net_lock:
            holder = next((f for f, (dc, _) in self._impaired.items() if dc == source), None)
            if holder is not None:
                raise UsageError(f"{source}'s link already carries fault {holder}: remove it first")
            netlink.set_shaping(self.namespaces[source], DC_LINK, [self.topology.address(to)], rate, list(netem))
            self._impaired[fault_id] = (source, to)

    def delay(self, fault_id: str, source: str, to: str, ms: float, jitter_ms: float = 0.0) -> dict[str, str]:
        """Hold what ``source`` sends to ``to``'s address ``ms`` +/- ``jitter_ms``: its calls wait going out, and its
        answers to ``to``'s calls going back, as netem on its link would. netem where the kernel has it, else an
        NFQUEUE rule in ``to``'s namespace where they arrive and a delayer there holding them (``delay_layer``); what
        was used, for the fault's journal entry. One delay per data center's link at a time."""
        for dc in (source, to):
            self.topology.require_dc(dc)
        if self.delay_layer == "netem":
            netem = ["delay", f"{ms:g}ms"] + ([f"{jitter_ms:g}ms"] if jitter_ms else [])
            self.impair(fault_id, source, to, netem=netem)
            return {"via": "netem", "netem": " ".join(netem)}
        if self.delay_layer != "nfqueue":
            raise RuntimeError_("this kernel can delay no packets (neither netem nor NFQUEUE)")
        proc = self._queue(fault_id, source, to, ms, jitter_ms, 0.0)
        return {"via": "nfqueue", "delayer": str(proc.pid), "delay": f"{ms:g}ms +/- {jitter_ms:g}ms"}

    def corrupt(self, fault_id: str, source: str, to: str, percent: float) -> dict[str, str]:
        """Flip one bit in ``percent`` % of the packets ``source`` sends to ``to``'s address, so that ``to`` finds
        their checksum wrong and drops them: netem's corrupt where the kernel has netem, else the NFQUEUE rule in
        ``to``'s namespace and a delayer there that flips a bit past the IP header (the IP header was checked
        already where they are queued). What was used, for the fault's journal entry. One such fault per data
        center's link at a time, latency included: they share its qdisc, or its queue."""
        for dc in (source, to):
            self.topology.require_dc(dc)
        if self.delay_layer == "netem":
            netem = ["corrupt", f"{percent:g}%"]
            self.impair(fault_id, source, to, netem=netem)
            return {"via": "netem", "netem": " ".join(netem)}
        if self.delay_layer != "nfqueue":
            raise RuntimeError_("this kernel can corrupt no packets (neither netem nor NFQUEUE)")
        proc = self._queue(fault_id, source, to, 0.0, 0.0, percent)
        return {"via": "nfqueue", "delayer": str(proc.pid), "corrupt": f"{percent:g}%"}

    def _queue(
        self, fault_id: str, source: str, to: str, ms: float, jitter_ms: float, corrupt_percent: float
    ) -> subprocess.Popen[str]:
        """A delayer in ``to``'s namespace on ``source``'s queue, then the rule that queues ``source``'s packets."""
        namespace, address, queue = self.namespaces[to], self.topology.address(source), self._queues[source]
        with self._net_lock:
            holder = next((f for f, (dc, _, _) in self._delayers.items() if dc == source), None)
            if holder is not None:
                raise UsageError(
                    f"{source}'s link already carries fault {holder} through its NFQUEUE (latency and corruption "
                    "share it): remove it first"
                )
            log = self.run_dir / "logs" / f"delayer-{source}-{to}.log"
            proc = delayer.start(netlink.netns_path(namespace), queue, ms, jitter_ms, log, corrupt_percent)
            try:
                netlink.add_queue_rule(namespace, address, queue)
            except BaseException:
                delayer.stop(proc)
                raise
            self._delayers[fault_id] = (source, to, proc)
        return proc

    def repair(self, fault_id: str) -> None:
        """Remove what ``impair``, ``delay`` or ``corrupt`` made for ``fault_id``: the qdisc, or the rule and then
        its delayer."""
        with self._net_lock:
            held = self._impaired.pop(fault_id, None)
            if held is not None:
                netlink.clear_shaping(self.namespaces[held[0]], DC_LINK)
            delayed = self._delayers.pop(fault_id, None)
            if delayed is not None:
                source, to, proc = delayed
                netlink.remove_queue_rule(self.namespaces[to], self.topology.address(source), self._queues[source])
                delayer.stop(proc)  # after the rule: nothing new is queued to it, what it holds goes on

    def block(self, fault_id: str, source: str, to: str, both_ways: bool, loss_percent: int = 100) -> None:
        """Drop ``source``'s calls to ``to`` (nftables in ``source``'s namespace: the connections it opens; calls
        the other way still get their answers), or, ``both_ways``, every packet between the two; below 100
        ``loss_percent``, that share of those packets, at random (packet loss)."""
        for dc in (source, to):
            self.topology.require_dc(dc)
        if not 0 < loss_percent <= 100:
            raise UsageError(f"loss_percent must be 1..100, not {loss_percent}")
        odds = "" if loss_percent == 100 else f"numgen random mod 100 < {loss_percent} "
        with self._net_lock:
            if both_ways:
                self._drops[fault_id] = {
                    source: [f"ip daddr {self.topology.address(to)} {odds}drop"],
                    to: [f"ip daddr {self.topology.address(source)} {odds}drop"],
                }
            else:
                rule = f"ip daddr {self.topology.address(to)} ct direction original {odds}drop"
                self._drops[fault_id] = {source: [rule]}
            self._apply_drops(set(self._drops[fault_id]))

    def unblock(self, fault_id: str) -> None:
        with self._net_lock:
            rules = self._drops.pop(fault_id, {})
            self._apply_drops(set(rules))

    def _apply_drops(self, dcs: set[str]) -> None:
        for dc in sorted(dcs):
            rules = [rule for by_dc in self._drops.values() for rule in by_dc.get(dc, [])]
            netlink.set_drops(self.namespaces[dc], rules)

    # -- internals -------------------------------------------------------------------------------
    def _listen(self, dc: str, name: str, port: int) -> socket.socket:
        address = self.topology.address(dc)
        return netlink.in_namespace(self.namespaces[dc], lambda: bind(name, port, address))

    def _namespace(self, dc: str) -> Path | None:
        return netlink.netns_path(self.namespaces[dc])

    def _build_network(self) -> None:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        record = netns_owner.claim(self.prefix, [*self.namespaces.values(), self.wan_namespace], self.host_link)
        self._record = record
        self._watcher = netns_owner.start_watcher(record, self.run_dir / "logs" / "netns-watcher.log")
        subnet = f"{netns_owner.SUBNET_BASE}.{record.subnet}"
        netlink.add_namespace(self.wan_namespace)
        netlink.add_bridge(self.wan_namespace, WAN)
        netlink.add_veth(self.host_link, None, "host", self.wan_namespace)
        netlink.enslave(self.wan_namespace, "host", WAN)
        netlink.set_link(self.wan_namespace, "host", up=True)
        self.host_address = f"{subnet}.{HOST_ADDRESS}"
        netlink.add_address(None, self.host_link, f"{self.host_address}/24")
        netlink.set_link(None, self.host_link, up=True)
        addresses = {}
        dcs = list(self.namespaces)
        for i, (dc, namespace) in enumerate(self.namespaces.items()):
            netlink.add_namespace(namespace)
            port = self._ports[dc]
            netlink.add_veth(DC_LINK, namespace, port, self.wan_namespace)
            netlink.enslave(self.wan_namespace, port, WAN)
            netlink.set_link(self.wan_namespace, port, up=True)
            addresses[dc] = f"{subnet}.{FIRST_DC_ADDRESS + i}"
            netlink.add_address(namespace, DC_LINK, f"{addresses[dc]}/24")
            netlink.set_link(namespace, DC_LINK, up=True)
        netlink.wait_operstate_up(
            [(None, self.host_link), *((self.wan_namespace, port) for port in self._ports.values())]
            + [(namespace, DC_LINK) for namespace in self.namespaces.values()]
        )
        self.netem = netlink.has_netem(self.namespaces[dcs[0]], DC_LINK)
        if self.netem:
            self.delay_layer = "netem"
        elif netlink.has_nfqueue(self.namespaces[dcs[0]]):
            self.delay_layer = "nfqueue"
        self.topology = self.topology.with_addresses(addresses)

    def _tear_down_network(self) -> None:
        for fault_id in list(self._delayers):  # a delayer keeps its namespace alive
            self.repair(fault_id)
        if self._record is not None:
            with netns_owner.records_lock():
                netns_owner.remove(self._record)
            self._record = None
        if self._watcher is not None:
            watcher.stop(self._watcher)
            self._watcher = None
