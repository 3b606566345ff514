"""What became of an HR event, and how anyone finds out.

Every event ends in one status (``EventStatus``: applied, rejected, superseded, cancelled, done,
failed; ``pending`` until then). When the processor settles one, :func:`settled` reports it once the
transaction that stored the status commits (a rolled-back attempt or a preview reports nothing):

- the Prometheus counter ``provisioner_hr_events_total{status=...}`` counts it;
- a rejected or superseded event is logged at WARNING on ``provisioner.hr_events`` with
  ``event_id``, ``employee_id``, ``type``, ``source``, ``status``, ``reason`` and an ``alert`` tag
  (``hr_event_rejected`` / ``hr_event_superseded``), so it reaches whoever watches the logs;
- a failed event (its processing raised: see ``processor``) is logged the same way at ERROR,
  tagged ``hr_event_failed``: it needs a person (fix the cause, ``provisioner events replay``).

The HR source reads the outcome back with a signed ``GET /hr/events/{event_id}``. A GET has no
body, so the signed message is ``"<timestamp>.GET <path>[?<query>]"``: the same HMAC as for a
POST, with the request target in place of the body, so a captured signature reads nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from prometheus_client import Counter
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, object_session

from provisioner.identities import repository as identities
from provisioner.intake import repository, signing
from provisioner.intake.models import EventStatus, HREvent

log = logging.getLogger("provisioner.hr_events")

HR_EVENTS = Counter("provisioner_hr_events", "HR events settled by the processor, by final status",
                    ["status"])
# Alert on increase(provisioner_hr_events_total{status="rejected"}[1h]) > 0: HR sent something
# the lifecycle does not allow, and no person's access changed because of it.
# ... and on increase(provisioner_hr_events_total{status="failed"}[15m]) > 0: an event could not
# be processed at all and waits for a person (`provisioner events list --status failed`).
WARN_STATUSES = {EventStatus.REJECTED: "hr_event_rejected", EventStatus.SUPERSEDED: "hr_event_superseded",
                 EventStatus.FAILED: "hr_event_failed"}
_KEY = "provisioner.hr_event_fates"


@dataclass(frozen=True, slots=True)
class Fate:
    event_id: str
    employee_id: str
    type: str
    source: str
    status: str
    reason: str | None


def settled(event: HREvent) -> None:
    """Report an event's final status once its transaction commits (call after setting it)."""
    fate = Fate(event.event_id, event.employee_id, event.type, event.source, event.status,
                event.status_reason)
    session = object_session(event)
    if session is None:
        report(fate)
        return
    pending: list[Fate] | None = session.info.get(_KEY)
    if pending is None:
        pending = session.info[_KEY] = []
        sa_event.listen(session, "after_commit", _flush)
        sa_event.listen(session, "after_rollback", _discard)
    pending.append(fate)


def _flush(session: Session) -> None:
    fates, session.info[_KEY] = session.info.get(_KEY, []), []
    for fate in fates:
        report(fate)


def _discard(session: Session) -> None:
    session.info[_KEY] = []


def report(fate: Fate) -> None:
    HR_EVENTS.labels(fate.status).inc()
    alert = WARN_STATUSES.get(fate.status)
    if alert is None:
        return
    level = logging.ERROR if fate.status == EventStatus.FAILED else logging.WARNING
    log.log(level, "HR event %s (%s for %s from %s) %s: %s", fate.event_id, fate.type, fate.employee_id,
                fate.source, fate.status, fate.reason,
                extra={"event_id": fate.event_id, "employee_id": fate.employee_id, "event_type": fate.type,
                       "source": fate.source, "status": fate.status, "reason": fate.reason, "alert": alert})


# -- reading events back -----------------------------------------------------------------------
def read_message(method: str, target: str) -> bytes:
    """What a signed GET signs in place of a body: ``"GET /hr/events/e1"`` (path and query)."""
    return f"{method.upper()} {target}".encode()


def signed_read_headers(source: str, secret: str, target: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers for ``GET target`` (e.g. ``/hr/events/e1``) as an HR source signs it."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {signing.SOURCE_HEADER: source, signing.TIMESTAMP_HEADER: str(ts),
            signing.SIGNATURE_HEADER: signing.sign(secret, ts, read_message("GET", target))}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def view(event: HREvent, known: Collection[str] = ()) -> dict[str, Any]:
    """An event as its source (and the CLI's --json) sees it; ``known``: employee ids that have
    a record now (a warning about an unknown manager among them is resolved). ``views`` reads them."""
    return {"event_id": event.event_id, "type": event.type, "employee_id": event.employee_id,
            "source": event.source, "status": event.status, "reason": event.status_reason,
            "warnings": [_resolved(w, known) for w in event.warnings or []],
            "effective_at": _iso(event.effective_at), "received_at": _iso(event.received_at),
            "processed_at": _iso(event.processed_at)}


def page(session: Session, path: str, *, source: str, status: str | None = None,
         since: datetime | None = None, after: int | None = None, limit: int = 100) -> dict[str, Any]:
    """A page of a source's events as ``GET /hr/events`` and ``GET /hr/sources/{name}/events``
    answer it: their views, oldest first, and ``next``: the next page's path (``path`` with the same
    filters, after the last id), or None on the last page."""
    rows = repository.listing(session, source=source, status=status, since=since, after_id=after, limit=limit)
    nxt = None
    if len(rows) == limit:
        params = {k: v for k, v in (("status", status), ("since", since.isoformat() if since else None),
                                    ("limit", limit), ("after", rows[-1].id)) if v is not None}
        nxt = f"{path}?{urlencode(params)}"
    return {"events": views(session, rows), "next": nxt}


def views(session: Session, events: Sequence[HREvent]) -> list[dict[str, Any]]:
    """``view`` of many events, reading once who of the people their warnings name exists now."""
    named = {w.get("value") for e in events for w in e.warnings or [] if w.get("code") == UNKNOWN_MANAGER}
    known = identities.known_employee_ids(session, [n for n in named if n]) if named else set()
    return [view(e, known) for e in events]


# -- warnings: applied, but something needs a look --------------------------------------------
UNKNOWN_MANAGER = "unknown_manager"


def unknown_manager(manager: str) -> dict[str, Any]:
    return {"field": "attributes.manager_employee_id", "code": UNKNOWN_MANAGER, "value": manager,
            "message": f"no person with employee_id {manager!r} is known: the manager is set in the "
                       "targets when they are hired (check the id if nobody is)"}


def warn(event: HREvent, warning: dict[str, Any]) -> None:
    """Record a warning on an applied event, and log it at WARNING (``alert`` hr_event_warning)."""
    event.warnings = [*(event.warnings or []), warning]
    log.warning("HR event %s (%s for %s from %s) applied with a warning: %s", event.event_id, event.type,
                event.employee_id, event.source, warning["message"],
                extra={"event_id": event.event_id, "employee_id": event.employee_id, "event_type": event.type,
                       "source": event.source, "status": event.status, "reason": warning["message"],
                       "alert": "hr_event_warning"})


def _resolved(warning: dict[str, Any], known: Collection[str]) -> dict[str, Any]:
    if warning.get("code") != UNKNOWN_MANAGER:
        return dict(warning)
    resolved = warning.get("value") in known
    return {**warning, "resolved": resolved,
            **({"resolution": f"{warning.get('value')} is known now: the manager link is written once "
                              "their account exists"} if resolved else {})}
