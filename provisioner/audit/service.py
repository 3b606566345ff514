"""Append to the hash-chained audit trail, inside the caller's transaction.

Each record's hash covers its content and the previous record's hash, so editing, inserting or
deleting any record breaks the chain (``provisioner audit verify`` says where). With
``PROVISIONER_AUDIT_KEY`` set the chain is an HMAC, so someone with database access alone cannot
re-forge it, and the head (sequence and hash) is sealed with an HMAC too, so it cannot be rewound
after the newest records are deleted. Deleting everything, or rewinding to a head seen before, is
found only against an anchor kept outside the database (``provisioner.audit.anchor``).
Records must never carry secrets: callers pass identifiers and outcomes only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from provisioner.audit.models import AuditHead, AuditRecord
from provisioner.clock import utcnow
from provisioner.db import insert_rows
from provisioner.jsonutil import canonical, loads

GENESIS = "0" * 64
# Built once: these run for every HR event and every operation attempt.
_LOCK_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
# A writer without the key keeps the head's key id (the chain still says it was written with a
# key) and leaves the head unsealed, which `audit verify` with the key reports.
_MOVE_HEAD = (update(AuditHead).where(AuditHead.id == 1)
              .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"), mac=bindparam("new_mac"),
                      key_id=func.coalesce(bindparam("new_key_id"), AuditHead.key_id)))
_READ_HEAD = select(AuditHead.seq, AuditHead.hash, AuditHead.key_id, AuditHead.mac).where(AuditHead.id == 1)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    subject: str | None
    data: dict[str, Any]


def chain_key() -> bytes | None:
    key = os.environ.get("PROVISIONER_AUDIT_KEY")
    return key.encode() if key else None


def key_id(key: bytes) -> str:
    """A fingerprint naming the key (16 hex characters); the key cannot be derived from it."""
    return hmac.new(key, b"provisioner audit key id", hashlib.sha256).hexdigest()[:16]


def head_mac(key: bytes, seq: int, digest: str) -> str:
    """The head's seal: an HMAC over its sequence number and hash."""
    return hmac.new(key, f"audit-head:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str
    key_id: str | None = None
    mac: str | None = None

    @property
    def anchor(self) -> str:
        """``SEQ:HASH``, as ``provisioner audit verify --anchor`` takes it."""
        return f"{self.seq}:{self.hash}"


def read_head(session: Session) -> Head:
    """The chain head as it stands in this transaction (no lock)."""
    row = session.connection().execute(_READ_HEAD).one_or_none()
    return Head(0, GENESIS) if row is None else Head(row.seq, row.hash, row.key_id, row.mac)


def record_hash(seq: int, at: datetime, kind: str, subject: str | None, data: dict[str, Any],
                prev_hash: str, key: bytes | None = None) -> str:
    body = canonical({"seq": seq, "at": at.isoformat(), "kind": kind, "subject": subject,
                      "data": data, "prev": prev_hash})
    if key is not None:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    # Store exactly what was hashed (JSON round trip: datetimes become strings).
    return loads(canonical(data))


def append_many(session: Session, entries: list[Entry]) -> int:
    """Append entries in order; locks the chain head so concurrent appenders queue.

    Core inserts, not ORM objects: every HR event and operation attempt lands here. Inside
    :func:`deferred` the entries are kept and appended when it ends (0 is returned).
    """
    if not entries:
        return 0
    kept: list[Entry] | None = session.info.get(_DEFERRED)
    if kept is not None:
        kept.extend(entries)
        return 0
    conn = session.connection()
    head = conn.execute(_LOCK_HEAD).one()
    now = utcnow()
    at = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    rows = []
    seq, prev = head.seq, head.hash
    key = chain_key()
    for entry in entries:
        seq += 1
        data = _normalise(entry.data)
        digest = record_hash(seq, at, entry.kind, entry.subject, data, prev, key)
        rows.append({"seq": seq, "at": at, "kind": entry.kind, "subject": entry.subject, "data": data,
                     "prev_hash": prev, "hash": digest})
        prev = digest
    insert_rows(session, AuditRecord, rows)
    conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev,
                              "new_mac": head_mac(key, seq, prev) if key is not None else None,
                              "new_key_id": key_id(key) if key is not None else None})
    return seq


_DEFERRED = "provisioner.audit.deferred"


@contextmanager
def deferred(session: Session) -> Iterator[None]:
    """Keep what is appended inside and append it, in order, when the block ends: a batch of
    HR events locks the chain head once, at the end of its transaction. If the block raises,
    nothing is appended (the caller's transaction rolls back)."""
    if session.info.get(_DEFERRED) is not None:
        yield
        return
    kept: list[Entry] = []
    session.info[_DEFERRED] = kept
    try:
        yield
    finally:
        session.info.pop(_DEFERRED, None)
    append_many(session, kept)


def append(session: Session, kind: str, subject: str | None, /, **data: Any) -> int:
    """Append one record; returns its sequence number."""
    return append_many(session, [Entry(kind, subject, data)])
