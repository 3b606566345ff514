"""The whole service with the shipped webhook examples (examples/hr_sources) as its HR sources,
and posts signed as BambooHR and HiBob sign them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from provisioner.clock import clock, utcnow
from provisioner.demo.harness import REPO
from provisioner.intake.models import HREvent

PAYLOADS = Path(__file__).parent / "payloads"
EXAMPLES = REPO / "examples" / "hr_sources"
SECRETS = {"bamboohr": "bamboo-private-key-for-tests", "hibob": "bob-secret-for-tests"}
DOCUMENTED_AT = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)  # the payloads' dates are the vendors' examples'


def copy_examples(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in EXAMPLES.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    return folder


def at_documented_time() -> None:
    """Move the service's clock to the day after the documented examples (the effective window)."""
    clock.advance(DOCUMENTED_AT - utcnow())


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def bamboohr_headers(body: bytes, *, secret: str = SECRETS["bamboohr"], timestamp: int | None = None) -> dict[str, str]:
    """As BambooHR signs: hex HMAC-SHA256 of the private key over the body followed by the timestamp."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-BambooHR-Timestamp": ts, "X-BambooHR-Signature": mac}


def hibob_headers(body: bytes, *, secret: str = SECRETS["hibob"]) -> dict[str, str]:
    """As HiBob signs: Base64 HMAC-SHA512 of the secret over the body."""
    mac = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha512).digest()).decode()
    return {"Content-Type": "application/json", "Bob-Signature": mac}


def stored(service: Any, source: str | None = None) -> list[dict[str, Any]]:
    with service.db.transaction() as session:
        query = select(HREvent).order_by(HREvent.id)
        if source is not None:
            query = query.where(HREvent.source == source)
        return [{"event_id": e.event_id, "source": e.source, "type": e.type, "employee_id": e.employee_id,
                 "effective_at": e.effective_at, "payload": e.payload, "status": e.status}
                for e in session.scalars(query)]


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()
