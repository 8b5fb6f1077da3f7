"""Fault-space search (`blackout search`): the smallest sets of faults that break a user action, found by
lineage-driven fault injection over request-scoped experiments, shrunk by delta debugging, replayed live."""
