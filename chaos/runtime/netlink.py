"""The few `ip`, `tc`, `nft` and `iptables-nft` commands the netns runtime needs, run as subprocesses.

Why the iproute2/nftables command line rather than pyroute2: these are the tools an operator reads and
types to check what the runtime did (`ip netns list`, `tc qdisc show`), every Linux with network namespaces
has them, and the runtime issues a handful of commands per power cut, not a stream: a library would add a
dependency for one Linux-only runtime and speak a second dialect of the same commands.

Every command names its namespace (``ip -n NS``, ``ip netns exec NS``): nothing here touches the host's own
interfaces except the one veth end the runtime created there.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from chaos.runtime.base import RuntimeError_

NETNS_DIR = Path("/run/netns")  # where `ip netns add` pins a named namespace
CLONE_NEWNET = 0x40000000  # <sched.h>; os.setns arrives only in Python 3.12
COMMAND_TIMEOUT_S = 10.0
T = TypeVar("T")


class NetlinkError(RuntimeError_):
    """An ip/tc/nft command failed; the message quotes the command and what it said."""


def missing_tools() -> list[str]:
    return [tool for tool in ("ip", "tc", "nft") if shutil.which(tool) is None]


def why_unsupported() -> str:
    """ "" when this process can build namespaces here, else why not (for the runtime's error and test skips)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the netns runtime needs root (network namespaces, veths, tc)"
    if missing := missing_tools():
        return f"the netns runtime needs {', '.join(missing)} on PATH (iproute2, nftables)"
    if not hasattr(os, "pidfd_open"):
        return "the netns runtime needs Linux pidfds"
    return ""


def run(*args: str, check: bool = True, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetlinkError(f"`{' '.join(args)}` failed: {exc}") from None
    if check and done.returncode != 0:
        raise NetlinkError(f"`{' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# -- namespaces ------------------------------------------------------------------------------------
def namespaces() -> list[str]:
    """Named namespaces (`ip netns list` without the "(id: N)" tails)."""
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]


def add_namespace(name: str) -> None:
    run("ip", "netns", "add", name)
    run("ip", "-n", name, "link", "set", "lo", "up")


def delete_namespace(name: str) -> None:
    """Deleting a namespace takes its interfaces (and their qdiscs, and its nftables rules) with it; a veth
    whose peer was inside goes too. One already gone is fine (another cleaner may race us): only one that
    stays is an error."""
    done = run("ip", "netns", "delete", name, check=False)
    if name in namespaces():
        raise NetlinkError(f"namespace {name} could not be deleted {done}".strip())


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def in_namespace(name: str, work: Callable[[], T]) -> T:
    """``work()`` on a thread that joined namespace ``name``: sockets it creates live there (a socket keeps
    its namespace for life, whichever process holds it later). setns moves only the calling thread, so a
    throwaway thread does it and the caller's own namespace never changes."""
    result: list[T] = []
    error: list[BaseException] = []

    def enter_and_work() -> None:
        try:
            enter(netns_path(name))
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread
            error.append(exc)

    thread = threading.Thread(target=enter_and_work, name=f"netns-{name}")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def enter(path: Path) -> None:
    """setns(2) the calling thread into the network namespace pinned at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise NetlinkError(f"setns({path}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


# -- links -----------------------------------------------------------------------------------------
def add_veth(name: str, namespace: str | None, peer: str, peer_namespace: str) -> None:
    """A veth pair, each end created directly in its namespace (``None``: the host's)."""
    here = ["netns", namespace] if namespace else []
    run("ip", "link", "add", name, *here, "type", "veth", "peer", "name", peer, "netns", peer_namespace)


def add_bridge(namespace: str, name: str) -> None:
    run("ip", "-n", namespace, "link", "add", name, "type", "bridge")
    run("ip", "-n", namespace, "link", "set", name, "up")


def enslave(namespace: str, port: str, bridge: str) -> None:
    run("ip", "-n", namespace, "link", "set", port, "master", bridge)


def set_link(namespace: str | None, name: str, up: bool) -> None:
    where = ["-n", namespace] if namespace else []
    run("ip", *where, "link", "set", name, "up" if up else "down")


def link_is_up(namespace: str | None, name: str) -> bool:
    where = ["-n", namespace] if namespace else []
    out = run("ip", *where, "-o", "link", "show", "dev", name, check=False)
    flags = out.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in out else []
    return "UP" in flags


def operstate_up(namespace: str | None, name: str) -> bool:
    """The kernel says the link carries traffic ("state UP"): set up, and its peer's carrier seen."""
    where = ["-n", namespace] if namespace else []
    return " state UP " in run("ip", *where, "-o", "link", "show", "dev", name, check=False)


def wait_operstate_up(links: list[tuple[str | None, str]], timeout_s: float = 5.0) -> None:
    """Poll until every (namespace, link) is UP: the kernel applies a carrier change a moment after `ip link
    set up` (linkwatch), and until then what is sent is dropped (a first SYN would wait out its timeout)."""
    deadline = time.monotonic() + timeout_s
    while not all(operstate_up(namespace, name) for namespace, name in links):
        if time.monotonic() > deadline:
            raise NetlinkError(f"links not up within {timeout_s:g}s: {links}")
        time.sleep(0.01)


def add_address(namespace: str | None, device: str, cidr: str) -> None:
    where = ["-n", namespace] if namespace else []
    run("ip", *where, "addr", "add", cidr, "dev", device)


def host_links() -> list[str]:
    return [line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link", "show").splitlines()]


def delete_host_link(name: str) -> None:
    """Delete the host's end of a veth; gone already is fine: it goes by itself when its peer's namespace is
    destroyed, which may happen between a look and the delete."""
    run("ip", "link", "delete", name, check=False)
    if name in host_links():
        raise NetlinkError(f"link {name} could not be deleted")


def used_subnets() -> str:
    """Every IPv4 address and route of the host, as text: a candidate subnet must appear in neither."""
    return run("ip", "-4", "-o", "addr", "show") + run("ip", "-4", "route", "show", "table", "all")


# -- traffic control ---------------------------------------------------------------------------------
def qdiscs(namespace: str, device: str) -> str:
    return run("ip", "netns", "exec", namespace, "tc", "qdisc", "show", "dev", device)


UNLIMITED = "10gbit"  # an htb class's rate when only netem is wanted: no limit a veth here reaches


def set_shaping(
    namespace: str, device: str, towards: list[str], rate: str = UNLIMITED, netem: Sequence[str] = ()
) -> None:
    """Shape what leaves ``device`` for the addresses ``towards``: an htb root whose one class holds ``rate``
    (and, below it, netem's delay, jitter, corruption when given), and a u32 filter per address steering into
    it. htb's default 0 sends anything else straight out: the users' edge and the data center itself are
    untouched. htb and u32 rather than prio: they are what the smallest kernels here still build."""
    tc = ["ip", "netns", "exec", namespace, "tc"]
    clear_shaping(namespace, device)
    run(*tc, "qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default", "0")
    run(*tc, "class", "add", "dev", device, "parent", "1:", "classid", "1:1", "htb", "rate", rate, "ceil", rate)
    if netem:
        run(*tc, "qdisc", "add", "dev", device, "parent", "1:1", "handle", "10:", "netem", *netem)
    for address in towards:
        match = ["match", "ip", "dst", f"{address}/32"]
        run(
            *tc,
            "filter",
            "add",
            "dev",
            device,
            "parent",
            "1:",
            "protocol",
            "ip",
            "prio",
            "1",
            "u32",
            *match,
            "flowid",
            "1:1",
        )


def has_netem(namespace: str, device: str) -> bool:
    """Whether this kernel has netem (sch_netem): tried on ``device`` and removed at once."""
    tc = ["ip", "netns", "exec", namespace, "tc"]
    run(*tc, "qdisc", "add", "dev", device, "root", "handle", "1:", "netem", "delay", "1ms", check=False)
    present = "netem" in qdiscs(namespace, device)
    clear_shaping(namespace, device)
    return present


def clear_shaping(namespace: str, device: str) -> None:
    run("ip", "netns", "exec", namespace, "tc", "qdisc", "del", "dev", device, "root", check=False)


# -- nftables (inside a namespace: the rules go with it) ---------------------------------------------
PARTITION_TABLE = "blackout"


def set_drops(namespace: str, rules: list[str]) -> None:
    """Replace the namespace's drops with ``rules`` (nft statements of its output chain, e.g.
    ``ip daddr 10.231.0.10 drop``): a firewall's partition, SYNs and segments vanish, nothing is refused."""
    clear_drops(namespace)
    if not rules:
        return
    body = "".join(f"    {rule};\n" for rule in rules)
    table = (
        f"table inet {PARTITION_TABLE} {{\n  chain output {{\n    type filter hook output priority 0;\n{body}  }}\n}}\n"
    )
    run("ip", "netns", "exec", namespace, "nft", "-f", "-", stdin=table)


def clear_drops(namespace: str) -> None:
    run("ip", "netns", "exec", namespace, "nft", "delete", "table", "inet", PARTITION_TABLE, check=False)


# -- NFQUEUE (latency without netem: chaos.runtime.delayer) -------------------------------------------
# iptables-nft, not nft: nft's own `queue` statement needs CONFIG_NFT_QUEUE, which kernels without netem tend to
# lack too, while the xt NFQUEUE target (through nft's compat layer) is there. --queue-bypass: a packet the
# queue has no reader for passes undelayed (a dead delayer never blackholes the link).
# Queued where they arrive (INPUT), not where they leave (OUTPUT): a packet held in its sender's output path
# still counts against its socket (TCP small queues let ~2 packets be in the host at once), so a bulk transfer
# would crawl at 2 packets per delay. netem orphans what it holds for that reason; once through the veth a packet
# is orphaned too, and the sender sees a slow link, not a full queue of its own.
DELAY_QUEUE = 7  # the first queue number; queues are per namespace
PROBE_ADDRESS = "192.0.2.1"  # TEST-NET-1: a rule for it, added and removed at once, matches nothing of ours


def _queue_rule(source: str, queue: int) -> list[str]:
    return ["INPUT", "-s", f"{source}/32", "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]


def add_queue_rule(namespace: str, source: str, queue: int = DELAY_QUEUE) -> None:
    """Queue what reaches the namespace from ``source`` (its calls here, and its answers to calls from here)."""
    run("ip", "netns", "exec", namespace, "iptables-nft", "-A", *_queue_rule(source, queue))


def remove_queue_rule(namespace: str, source: str, queue: int = DELAY_QUEUE) -> None:
    run("ip", "netns", "exec", namespace, "iptables-nft", "-D", *_queue_rule(source, queue), check=False)


def queue_rules(namespace: str) -> str:
    return run("ip", "netns", "exec", namespace, "iptables-nft", "-S", "INPUT", check=False)


def has_nfqueue(namespace: str) -> bool:
    """Whether packets can be queued to a process here (iptables-nft and the kernel's NFQUEUE target): a rule
    tried in ``namespace`` and removed at once."""
    if shutil.which("iptables-nft") is None:
        return False
    try:
        add_queue_rule(namespace, PROBE_ADDRESS)
    except NetlinkError:
        return False
    remove_queue_rule(namespace, PROBE_ADDRESS)
    return True


def pids_in(namespace: str) -> list[int]:
    """The processes whose network namespace is ``namespace`` (`ip netns pids`)."""
    return [int(pid) for pid in run("ip", "netns", "pids", namespace, check=False).split()]
