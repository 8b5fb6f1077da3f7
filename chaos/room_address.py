"""The address team rooms listen on, as the command line gives it (`blackout up --room-bind`, `blackout workshop
start --bind`): a module of its own, so the workshop and the supervisor read it without importing the control API."""

from __future__ import annotations

import argparse
import ipaddress


def room_address(text: str) -> str:
    """An argparse type: an IP address for the team rooms (`--room-bind`, `workshop start --bind`)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text}: give an IP address of this machine (e.g. its LAN address), or 0.0.0.0 for all"
        ) from None
