"""Lineage-driven pruning on small synthetic graphs: only the fault sets hitting every support are proposed."""

from __future__ import annotations

from chaos.search.atoms import Atom
from chaos.search.pruning import candidates, hitting_sets

E1, E2, E3 = ("user", "a"), ("a", "b"), ("a", "c")
X, Y, Z = Atom("crash", "a"), Atom("crash", "b"), Atom("crash", "c")
CUTS = {X: frozenset({E1, E2, E3}), Y: frozenset({E2}), Z: frozenset({E3})}


def test_one_support_any_atom_on_it_is_a_candidate_and_nothing_else():
    assert set(hitting_sets([frozenset({E1, E2})], CUTS, 1)) == {frozenset({X}), frozenset({Y})}


def test_two_supports_need_a_set_hitting_both():
    supports = [frozenset({E2}), frozenset({E3})]  # a call to b, or failing over to c
    assert set(hitting_sets(supports, CUTS, 1)) == {frozenset({X})}  # only a's crash hits both
    assert frozenset({Y, Z}) in set(hitting_sets(supports, CUTS, 2))


def test_a_support_no_atom_can_hit_admits_no_candidate():
    assert list(hitting_sets([frozenset({("user", "nowhere")})], CUTS, 2)) == []


def test_candidates_skip_what_was_tried_and_supersets_of_a_known_cut_and_come_smallest_first():
    supports = [frozenset({E2}), frozenset({E3})]
    rank = {X: 2, Y: 0, Z: 1}
    found = candidates(supports, CUTS, 2, tried=set(), failing=[], rank=rank)
    assert found[0] == frozenset({X})  # size 1 before size 2
    assert frozenset({Y, Z}) in found
    rest = candidates(supports, CUTS, 2, tried={frozenset({X})}, failing=[frozenset({Y, Z})], rank=rank)
    assert frozenset({X}) not in rest and frozenset({Y, Z}) not in rest
    assert rest  # sets with a's crash still hit both supports: it did not break the request, so they stay
    assert all(all(frozenset().union(*(CUTS[a] for a in c)) & s for s in supports) for c in rest)
