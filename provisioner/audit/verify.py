"""Walk the audit chain and name every record that was edited, inserted or deleted; check the
head's seal (with the key) and the chain against anchors kept outside the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.audit.anchor import Anchor
from provisioner.audit.models import AuditHead, AuditRecord
from provisioner.audit.service import GENESIS, chain_key, head_mac, key_id, record_hash


@dataclass
class VerifyReport:
    records: int = 0
    problems: list[str] = field(default_factory=list)
    # The key is missing or is not the chain's: record contents could not be checked (the links
    # between records and the anchors were).
    key_problem: str | None = None
    head: str | None = None  # SEQ:HASH of the head as stored
    anchors: int = 0  # anchors checked

    @property
    def ok(self) -> bool:
        return not self.problems and self.key_problem is None


def _key_problem(head: AuditHead | None, key: bytes | None) -> str | None:
    if head is None or head.key_id is None:
        return None
    if key is None:
        return (f"PROVISIONER_AUDIT_KEY is not set but the chain was written with a key (key id {head.key_id}): "
                "set it to the service's audit key and run again")
    if key_id(key) != head.key_id:
        return (f"PROVISIONER_AUDIT_KEY is not the key the chain was written with (the head names key id "
                f"{head.key_id}, this key's id is {key_id(key)}): use the service's audit key; if it is the "
                "right one, the chain head was tampered with")
    return None


def verify_chain(session: Session, anchors: Sequence[Anchor] = (), chunk: int = 5000) -> VerifyReport:
    report = VerifyReport(anchors=len(anchors))
    head = session.get(AuditHead, 1)
    key = chain_key()
    report.key_problem = _key_problem(head, key)
    check_content = report.key_problem is None
    wanted = {a.seq for a in anchors}
    seen: dict[int, str] = {}
    expected_seq, prev_hash = 1, GENESIS
    last_seq = 0
    stmt = select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=chunk)
    for record in session.scalars(stmt):
        report.records += 1
        if record.seq in wanted:
            seen[record.seq] = record.hash
        if record.seq > expected_seq:
            missing = (f"record {expected_seq}" if record.seq == expected_seq + 1
                       else f"records {expected_seq}..{record.seq - 1}")
            report.problems.append(f"{missing} deleted: the chain jumps to record {record.seq}")
        if check_content and record.hash != record_hash(record.seq, record.at, record.kind, record.subject,
                                                        record.data, record.prev_hash, key):
            report.problems.append(
                f"record {record.seq} ({record.kind}) edited: its content does not match its hash")
        elif record.prev_hash != prev_hash:
            report.problems.append(
                f"record {record.seq} ({record.kind}) does not follow record {last_seq}: "
                "a record before it was inserted, deleted or replaced")
        expected_seq, prev_hash, last_seq = record.seq + 1, record.hash, record.seq
    if head is None:
        report.problems.append("the chain head (audit_head row 1) is missing")
    else:
        report.head = f"{head.seq}:{head.hash}"
        _check_head(report, head, last_seq, prev_hash, key if check_content else None)
    for anchor in anchors:
        _check_anchor(report, anchor, seen.get(anchor.seq), last_seq)
    return report


def _check_head(report: VerifyReport, head: AuditHead, last_seq: int, last_hash: str,
                key: bytes | None) -> None:
    if head.seq != last_seq or head.hash != last_hash:
        if head.seq > last_seq:
            report.problems.append(
                f"records {last_seq + 1}..{head.seq} deleted: the chain head is at {head.seq}")
        elif head.seq < last_seq:
            report.problems.append(
                f"records {head.seq + 1}..{last_seq} inserted after the chain head ({head.seq})")
        else:
            report.problems.append(f"record {last_seq} replaced: the chain head's hash differs")
    if key is None:
        return
    if head.key_id is None:
        if head.seq > 0:
            report.problems.append(
                f"the chain head ({head.seq}) is not sealed, though PROVISIONER_AUDIT_KEY is set: it was "
                "rewritten, or the chain was written without the key")
    elif head.mac != head_mac(key, head.seq, head.hash):
        report.problems.append(
            f"the chain head ({head.seq}) does not carry the key's seal: it was rewound or rewritten (were "
            "records after it deleted?), or a process appended without PROVISIONER_AUDIT_KEY")


def _check_anchor(report: VerifyReport, anchor: Anchor, found: str | None, last_seq: int) -> None:
    if anchor.seq == 0:
        if anchor.hash != GENESIS:
            report.problems.append(f"the anchor {anchor.short} ({anchor.source}) is not a chain head: "
                                   "sequence 0 is the empty chain")
        return
    if found is None:
        ends = f"the chain ends at record {last_seq}" if last_seq else "the chain is empty"
        first = last_seq + 1 if anchor.seq > last_seq else anchor.seq
        report.problems.append(
            f"records {first}..{anchor.seq} deleted: the anchor {anchor.short} ({anchor.source}) names "
            f"record {anchor.seq}, but {ends if anchor.seq > last_seq else 'it is not in the chain'}")
    elif found != anchor.hash:
        report.problems.append(
            f"record {anchor.seq} does not match the anchor {anchor.short} ({anchor.source}): its hash is "
            f"{found[:12]}…; the chain was rewritten at or before record {anchor.seq}")
