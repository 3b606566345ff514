"""What a target's app was found not to do: a write form it refused or answered without effect
(e.g. member removal by ``members[value eq "x"]``). Kept so a restart starts from what was learned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.db import Base, UTCDateTime


class LearnedForm(Base):
    """One refused form of one operation in one target (the ladders: targets/scim/forms.py)."""

    __tablename__ = "scim_learned_forms"

    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    operation: Mapped[str] = mapped_column(String(40), primary_key=True)  # member_remove, user_update, ...
    form: Mapped[str] = mapped_column(String(40), primary_key=True)  # filter, value_list, patch, put
    reason: Mapped[str] = mapped_column(String(1000))
    learned_at: Mapped[datetime] = mapped_column(UTCDateTime())
