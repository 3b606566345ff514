"""Change control: IT reviews access diffs before they happen.

- ``approvals_gate``: the planning rule (pure): which grants wait for an approver (sensitive
  groups, grants marked ``approval: required``) and which are blocked by separation of duties.
- ``approvals_service`` / ``sod_service``: record what waits, approve or reject it, grant and
  revoke SoD exceptions, and end time-bound access when it expires (through the planner).
- ``approvals_endpoints`` and ``provisioner/cli/approvals.py``: the HTTP API and the CLI.

- ``holds``: mass-change holds (destructive changes of one cause past a threshold wait for an
  approver); ``rollouts``: reviewing policy rollouts (the population-wide diff) before they apply.
"""
