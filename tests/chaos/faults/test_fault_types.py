"""Every fault kind of the registry is declarable as exactly one fault type; nothing else is."""

from __future__ import annotations

import pytest

from chaos.faults.actions import KINDS
from chaos.faults.fault_types import FAULT_TYPES, check_type, fault_type


def test_every_fault_kind_has_exactly_one_type_and_only_faults_have_one():
    covered = [kind for _, kinds in FAULT_TYPES.values() for kind in kinds]
    assert sorted(covered) == sorted(name for name, kind in KINDS.items() if kind.fault)
    assert fault_type("flap") == fault_type("power_off") == "power-loss"  # alike from the outside


def test_a_remedy_is_no_fault_type_and_an_unknown_type_lists_the_known_ones():
    with pytest.raises(ValueError, match="not a fault kind"):
        fault_type("power_on")
    with pytest.raises(ValueError, match="fault types: power-loss, process-crash"):
        check_type("gremlins")
