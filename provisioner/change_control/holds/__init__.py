"""Mass-change holds: a cause's destructive operations on a target, held for an approver when
they would exceed that cause's thresholds (``service`` explains the rule)."""
