"""The run folder: every file a run leaves, named once. Its writers and readers (the engine, the runtimes, the load
generator and its locustfile, the audit, the report, the post-mortem, the workshop) take the names from here.

It imports nothing of the project: loadtest's locustfile and every chaos package can use it without a cycle.
"""

from __future__ import annotations

from pathlib import Path

# The run's record
JOURNAL = "journal.jsonl"  # every event, one JSON object a line (chaos/journal.py)
JOURNAL_DOC = "journal.json"  # the run as Chaos Toolkit's journal, with its verdict (chaos/engine/toolkit_journal.py)
AUDIT_FILE = "audit.json"  # the data audit (chaos/audit/check.py)
SUMMARY_FILE = "summary.json"  # the per-phase summary (chaos/report.py)
PHASES_FILE = "phases.csv"  # the same, one row a phase
PICTURE = "timeline.png"  # the post-mortem's picture (chaos/observability/postmortem.py)
NOTES = "report.md"  # the post-mortem's notes

# What the run started from
PROFILE_FILE = "profile.yaml"  # the profile the run started under, as given
SCENARIO_FILE = "scenario.yaml"
TOPOLOGY_FILE = "topology.yaml"  # the topology as started (its ports bound)
ACTIVE_PROFILE = "active-profile.yaml"  # Docker: the profile every container reads now (rewritten on a switch)

# The stack
STATE_FILE = "state.json"  # the local runtime's processes: pids with start times, groups, the topology
DATA_DIR = "data"  # every instance's databases and rollback files

# The load (loadtest/locustfile.py writes these, chaos/loadgen.py reads them)
REQUESTS_FILE = "requests.csv"  # every request a user made
WRITES_FILE = "writes.csv"  # every view a user recorded, with its outcome
UPLOADS_FILE = "uploads.csv"  # every upload, with its outcome
MASTER_FILE = "locust-master.json"  # the master's port, for workers started after it
LOAD_CONTROL_FILE = "load-control.json"  # the users and pace the controller asks of a running load
LOCUST_LOG = "locust.log"

# A workshop's board (the folder above its teams' runs folders)
WORKSHOP_STATE = "workshop.json"  # every team's stack and round (chaos/workshop/teams.py; the console reads it)


def profile_copy(run_dir: Path, name: str) -> Path:
    """Where a run keeps the copy of a profile switched to live: the data audit reads it to learn the designs the
    run ran under (chaos/audit/design.py)."""
    return run_dir / f"profile-{name}.yaml"
