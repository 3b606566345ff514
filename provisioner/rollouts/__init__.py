"""Policy rollouts: a changed policy set, its population-wide diff, and the re-planning it causes."""
