"""A network namespace's own protocol counters (/proc/net/snmp as seen from inside it, as `nstat -az` reads them)."""

from __future__ import annotations

from chaos.runtime import netlink


def snmp(namespace: str, protocol: str) -> dict[str, int]:
    """The counters of ``protocol`` ("Tcp", "Udp", "Ip") in ``namespace``: /proc/net/snmp's header and value lines."""
    lines = [
        line.split() for line in netlink.run("ip", "netns", "exec", namespace, "cat", "/proc/net/snmp").splitlines()
    ]
    names, values = (line[1:] for line in lines if line and line[0] == f"{protocol}:")
    return {name: int(value) for name, value in zip(names, values, strict=True)}
