"""Owner records: what a dead netns stack left is removed, and a removal that races the kernel is no error."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from chaos.runtime import netlink, netns_owner
from chaos.runtime.netns_owner import OwnerRecord

WHY_NOT = netlink.why_unsupported()
pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=f"NETNS OWNER RECORDS NOT TESTED: {WHY_NOT}")


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_host_link_gone_by_itself_between_look_and_delete_is_removed_not_an_error(monkeypatch):
    """The host's veth end goes by itself when its peer's namespace is destroyed: the watcher saw it listed, and
    `ip link delete` then found nothing. That crashed the watcher and left the owner record behind."""
    prefix = f"bot{os.getpid():x}"[:12]
    peer_namespace = f"{prefix}-peer"
    record = OwnerRecord(prefix, dead_pid(), 0.0, 255, (), f"{prefix}h")
    netlink.add_namespace(peer_namespace)
    netlink.add_veth(record.host_link, None, "peer", peer_namespace)
    record.write()
    real_host_links = netlink.host_links
    looks = 0

    def host_links() -> list[str]:
        """The kernel's answer; after the second look the link's peer namespace is destroyed (the race)."""
        nonlocal looks
        looks += 1
        answer = real_host_links()
        if looks == 2:
            netlink.delete_namespace(peer_namespace)
            deadline = time.monotonic() + 5
            while record.host_link in real_host_links() and time.monotonic() < deadline:
                time.sleep(0.01)  # the kernel tears a namespace down a moment after it is unpinned
        return answer

    monkeypatch.setattr(netlink, "host_links", host_links)
    try:
        netns_owner.remove(record)  # no NetlinkError
        assert not record.path.exists() and record.host_link not in real_host_links()
    finally:
        record.path.unlink(missing_ok=True)
        netlink.delete_namespace(peer_namespace)
        if record.host_link in real_host_links():
            netlink.run("ip", "link", "delete", record.host_link)


def test_a_stack_whose_owner_lives_is_not_swept():
    prefix = f"bou{os.getpid():x}"[:12]
    namespace = f"{prefix}-dc"
    record = OwnerRecord(prefix, os.getpid(), netns_owner.start_time(os.getpid()) or 0.0, 254, (namespace,), "")
    record.write()
    netlink.add_namespace(namespace)
    try:
        netns_owner.sweep()
        assert namespace in netlink.namespaces() and record.path.exists()
    finally:
        netlink.delete_namespace(namespace)
        record.path.unlink(missing_ok=True)
