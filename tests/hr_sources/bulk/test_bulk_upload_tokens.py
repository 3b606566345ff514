"""``provisioner hr-sources token issue|revoke``: a source's bearer token, stored hashed, audited,
working on ``POST /hr/bulkUpload`` until it is revoked."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from provisioner.audit.models import AuditRecord
from provisioner.tokens.models import ApiToken
from tests.hr_sources.bulk.bulk_requests import SOURCE, bulk, worker
from tests.hr_sources.bulk.test_bulk_upload import upload


async def test_issue_use_and_revoke(bulk_service, hr_cli):
    issued = hr_cli("hr-sources", "token", "issue", SOURCE)
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("pvt_")
    with bulk_service.db.read() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == f"hr-{SOURCE}"))
        assert row.scopes == f"hr:{SOURCE}"
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()  # only the hash is stored
        kinds = [(r.kind, r.subject) for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
        assert ("hr_source.token_issued", SOURCE) in kinds
        assert all(token not in str(r.data) for r in session.scalars(select(AuditRecord)))
    assert (await upload(bulk_service, token, bulk(worker("C1", "Ada", "Lovelace")))).status_code == 202

    again = hr_cli("hr-sources", "token", "issue", SOURCE)
    assert again.exit_code == 2 and f"a token named 'hr-{SOURCE}' exists" in again.output

    revoked = hr_cli("hr-sources", "token", "revoke", f"hr-{SOURCE}")
    assert revoked.exit_code == 0, revoked.output
    assert (await upload(bulk_service, token, bulk(worker("C2", "Alan", "Turing")))).status_code == 401
    with bulk_service.db.read() as session:
        assert ("hr_source.token_revoked", SOURCE) in [
            (r.kind, r.subject) for r in session.scalars(select(AuditRecord))]


def test_issue_refuses_an_undeclared_source(hr_cli):
    result = hr_cli("hr-sources", "token", "issue", "payroll")
    assert result.exit_code == 2
    assert "no HR source 'payroll' with a bulk_upload section" in result.output
    assert "declared: entra-inbound, other" in result.output
    assert hr_cli("hr-sources", "token", "revoke", "nope").exit_code == 2

