"""Reviewed policy rollouts: read a held rollout's diff (per target, group, person), approve it
(the re-plan runs) or reject it (recorded; the same policy set is never applied without a new
policy change)."""
