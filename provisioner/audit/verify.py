"""Walk the audit chain and name every record that was edited, inserted or deleted."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.audit.models import AuditHead, AuditRecord
from provisioner.audit.service import GENESIS, chain_key, record_hash


@dataclass
class VerifyReport:
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(session: Session, chunk: int = 5000) -> VerifyReport:
    report = VerifyReport()
    expected_seq, prev_hash = 1, GENESIS
    last_seq = 0
    key = chain_key()
    stmt = select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=chunk)
    for record in session.scalars(stmt):
        report.records += 1
        if record.seq != expected_seq:
            if record.seq > expected_seq:
                missing = (f"record {expected_seq}" if record.seq == expected_seq + 1
                           else f"records {expected_seq}..{record.seq - 1}")
                report.problems.append(f"{missing} deleted: the chain jumps to record {record.seq}")
        if record.hash != record_hash(record.seq, record.at, record.kind, record.subject,
                                      record.data, record.prev_hash, key):
            report.problems.append(
                f"record {record.seq} ({record.kind}) edited: its content does not match its hash")
        elif record.prev_hash != prev_hash:
            report.problems.append(
                f"record {record.seq} ({record.kind}) does not follow record {last_seq}: "
                "a record before it was inserted, deleted or replaced")
        expected_seq, prev_hash, last_seq = record.seq + 1, record.hash, record.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        if head.seq > last_seq:
            report.problems.append(
                f"records {last_seq + 1}..{head.seq} deleted: the chain head is at {head.seq}")
        elif head.seq < last_seq:
            report.problems.append(
                f"records {head.seq + 1}..{last_seq} inserted after the chain head ({head.seq})")
        else:
            report.problems.append(f"record {last_seq} replaced: the chain head's hash differs")
    return report
