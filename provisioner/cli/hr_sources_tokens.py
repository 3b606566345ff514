"""``provisioner hr-sources token ...``: bearer tokens of the HR sources declared under
``hr_sources/`` with a ``bulk_upload`` section. Added to the ``hr-sources`` sub-app
(``cli/hr_sources.py``) as ``token``.

    provisioner hr-sources token issue SOURCE [--name NAME]   # prints the token once
    provisioner hr-sources token revoke NAME

A source's token (scope ``hr:<source>``) posts its bulk uploads (``POST /hr/bulkUpload``) and
reads their events back; only its SHA-256 is stored. Issuing and revoking are audited.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from provisioner.cli.common import console, err_console, fail, open_db, settings

token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens of HR sources (bulk uploads).")


@token_app.command("issue")
def issue(source: Annotated[str, typer.Argument(help="The HR source's name (its file under hr_sources/).")],
          name: Annotated[Optional[str], typer.Option(
              help="the token's name (default hr-<source>; give another to rotate without a gap)")] = None) -> None:
    """Issue a token for SOURCE's bulk uploads; it is printed once, on stdout."""
    from provisioner.audit.service import append
    from provisioner.hr_sources.declarations import load_sources
    from provisioner.targets.config import ConfigError
    from provisioner.tokens.service import TokenError, create_token, hr_source_scope

    cfg = settings()
    try:
        sources = load_sources(cfg.hr_sources_dir)
    except ConfigError as exc:
        fail(f"{exc.problems[0]} (fix the HR source files under {cfg.hr_sources_dir})")
    declared = sources.get(source)
    if declared is None or declared.bulk_upload is None:
        known = ", ".join(sorted(n for n, s in sources.items() if s.bulk_upload is not None)) or "none"
        fail(f"no HR source {source!r} with a bulk_upload section under {cfg.hr_sources_dir} (declared: {known}); "
             f"add {cfg.hr_sources_dir}/{source}.yaml with 'bulk_upload: {{}}'")
    token_name = name or f"hr-{source}"
    db = open_db(cfg)
    try:
        with db.transaction() as session:
            token = create_token(session, token_name, {hr_source_scope(source)})
            append(session, "hr_source.token_issued", source, token=token_name, scope=hr_source_scope(source))
    except TokenError as exc:
        fail(f"{exc} ('provisioner hr-sources token revoke {token_name}', or --name another)")
    finally:
        db.dispose()
    err_console.print(f"Token [bold]{token_name}[/] for HR source [bold]{source}[/] issued. Copy it now: it is "
                      "shown only once. The source sends it as 'Authorization: Bearer <token>' to POST /hr/bulkUpload.")
    console.print(token, highlight=False, soft_wrap=True)


@token_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The token's name (hr-<source> unless --name said otherwise).")]
           ) -> None:
    """Revoke an HR source's token: its requests are refused (401) from now on."""
    from provisioner.audit.service import append
    from provisioner.tokens.service import HR_SOURCE_PREFIX, TokenError, revoke_token, scopes_of

    db = open_db(settings())
    try:
        with db.transaction() as session:
            scopes = scopes_of(session, name)
            sources = [s[len(HR_SOURCE_PREFIX):] for s in scopes or () if s.startswith(HR_SOURCE_PREFIX)]
            if scopes is not None and not sources:
                raise TokenError(f"{name!r} is not an HR source's token (use 'provisioner token revoke')")
            revoke_token(session, name)
            append(session, "hr_source.token_revoked", sources[0], token=name)
    except TokenError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    err_console.print(f"Token [bold]{name}[/] revoked.")
