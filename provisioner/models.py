"""Every table, imported in one place for Alembic and schema creation."""

from provisioner.audit.models import AuditHead, AuditRecord
from provisioner.change_control.holds.models import HoldSet
from provisioner.change_control.models import AccessRequest
from provisioner.db import Base
from provisioner.directory.models import DirectoryGroup, DirectoryGroupMember
from provisioner.evidence.models import RevocationCheck, RevocationIncident
from provisioner.hr_sources.snapshots.models import SnapshotFile
from provisioner.identities.models import (
    Identity,
    LifecycleTransition,
    TargetAccount,
    TargetGroup,
    TargetMembership,
)
from provisioner.intake.models import HREvent
from provisioner.planner.models import Plan
from provisioner.queue.models import Operation
from provisioner.reconcile.models import ReconcileCursor, ReconcileDrift, ReconcileRun
from provisioner.rollouts.models import PolicyRollout
from provisioner.targets.learned.models import LearnedForm
from provisioner.tokens.models import ApiToken

__all__ = [
    "AccessRequest",
    "ApiToken",
    "AuditHead",
    "AuditRecord",
    "Base",
    "DirectoryGroup",
    "DirectoryGroupMember",
    "HoldSet",
    "HREvent",
    "Identity",
    "LearnedForm",
    "LifecycleTransition",
    "Operation",
    "Plan",
    "PolicyRollout",
    "ReconcileCursor",
    "ReconcileDrift",
    "ReconcileRun",
    "RevocationCheck",
    "RevocationIncident",
    "SnapshotFile",
    "TargetAccount",
    "TargetGroup",
    "TargetMembership",
]
