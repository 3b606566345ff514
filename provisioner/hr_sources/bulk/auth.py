"""The bearer tokens of HR sources: scope ``hr:<source>`` (``provisioner hr-sources token issue``).

Only such a token posts a bulk upload or reads its events back, and only for its own source: an
admin, SCIM or other source's token is refused (403), an unknown or revoked one too (401).
"""

from __future__ import annotations

from fastapi import Request

from provisioner.api.auth import bearer_identity
from provisioner.api.problems import Problem
from provisioner.hr_sources.declarations import HrSource
from provisioner.tokens.service import HR_SOURCE_PREFIX


def bulk_source(request: Request) -> HrSource:
    """The declared HR source (with a ``bulk_upload`` section) whose token the request carries."""
    _, scopes = bearer_identity(request, "<the HR source's token>")
    names = sorted(s[len(HR_SOURCE_PREFIX):] for s in scopes if s.startswith(HR_SOURCE_PREFIX))
    if len(names) != 1:
        raise Problem(403, "Forbidden", "this token is not an HR source's token (scope hr:<source>): issue one "
                                        "with 'provisioner hr-sources token issue SOURCE'",
                      type_="urn:provisioner:problem:forbidden")
    source = request.app.state.hr_sources.get(names[0])
    if source is None or source.bulk_upload is None:
        raise Problem(403, "Forbidden", f"HR source {names[0]!r} declares no bulk_upload section in its "
                                        "hr_sources/ file", type_="urn:provisioner:problem:forbidden")
    return source


def own_source(request: Request, name: str) -> HrSource:
    """``bulk_source`` for a path naming the source: another source's name is 403."""
    source = bulk_source(request)
    if source.name != name:
        raise Problem(403, "Forbidden", f"this token is HR source {source.name!r}'s, not {name!r}'s",
                      type_="urn:provisioner:problem:forbidden")
    return source
