"""Change control: approvals, mass-change holds, reviewed policy rollouts, separation of duties."""
