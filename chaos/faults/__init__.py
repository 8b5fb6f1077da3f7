"""Faults as data: the actions a scenario's timeline (or the control API) can take, each with its rollback."""
