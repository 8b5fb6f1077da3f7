"""The fault types a person declares: a small vocabulary over the registry's fault kinds (chaos.faults.actions).

A trainee sees a data center go dark, not whether the timeline said ``power_off`` or ``flap``: each type groups
the kinds that look alike from the outside. Every fault kind of the registry belongs to exactly one type
(tests/chaos/faults/test_fault_types.py holds the registry to it), so a new kind cannot be left undeclarable.
"""

from __future__ import annotations

from chaos.faults.actions import KINDS

# type -> (what it means to a person, the registry's kinds it covers)
FAULT_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "power-loss": ("a data center lost power (once or flapping)", ("power_off", "flap")),
    "process-crash": ("an instance died", ("kill_instance",)),
    "slow-dependency": ("a dependency answers, slowly", ("latency", "brownout", "loss", "corruption", "rate")),
    "error-responses": ("a dependency answers with errors", ("errors",)),
    "network-partition": ("calls between places are black-holed", ("blackhole", "partition")),
    "overload": ("more users than the stack can serve", ("load",)),
}
NAMES: tuple[str, ...] = tuple(FAULT_TYPES)


def fault_type(kind: str) -> str:
    """The type of a registry kind; ValueError for a kind that is no fault (a power-on, a profile switch)."""
    for name, (_, kinds) in FAULT_TYPES.items():
        if kind in kinds:
            return name
    raise ValueError(f"'{kind}' is not a fault kind; fault kinds: {', '.join(k for k, v in KINDS.items() if v.fault)}")


def check_type(name: str) -> str:
    """``name`` if it is a fault type; ValueError listing them otherwise (a card's or a declaration's typo)."""
    if name not in FAULT_TYPES:
        raise ValueError(f"unknown fault type {name!r}; fault types: {', '.join(NAMES)}")
    return name
