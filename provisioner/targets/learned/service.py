"""Keep what connectors learn about their apps across restarts.

At start the runtime hands each connector that learns write forms (SCIM: ``connector.forms``,
:mod:`provisioner.targets.scim.forms`) what was learned before, and gives it a hook that stores
each new lesson. The connectors themselves stay free of the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError

from provisioner.db import Database
from provisioner.targets.learned import repository


def attach(db: Database, connectors: Mapping[str, Any]) -> None:
    learners = {name: c.forms for name, c in connectors.items() if hasattr(c, "forms")}
    if not learners:
        return
    from provisioner.targets.scim.forms import Lesson

    with db.read() as session:
        rows = repository.all_forms(session)
        lessons = [Lesson(r.target, r.operation, r.form, r.reason, r.learned_at) for r in rows]

    def persist(lesson: Lesson) -> None:
        for attempt in range(2):  # two workers learning the same at once: the second updates
            try:
                with db.transaction() as session:
                    repository.record(session, lesson.target, lesson.operation, lesson.form, lesson.reason,
                                      lesson.learned_at)
                return
            except IntegrityError:
                if attempt:
                    raise

    for forms in learners.values():
        forms.load(lessons)
        forms.on_learned = persist
