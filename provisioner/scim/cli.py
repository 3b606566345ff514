"""``provisioner scim ...``: bearer tokens of the SCIM clients (RFC 7644 §2).

    provisioner scim token create NAME --scope read|read-write   # prints the token once
    provisioner scim token revoke NAME

Only the token's SHA-256 is stored; a revoked token is refused (401) from the next request.
"""

from __future__ import annotations

from typing import Annotated

import typer

from provisioner.cli.common import console, err_console, fail, open_db, settings
from provisioner.tokens.scopes import TokenScope

scim_app = typer.Typer(help="The SCIM 2.0 endpoint at /scim/v2.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens of SCIM clients.", no_args_is_help=True)
scim_app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the client, e.g. entra-prod.")],
    scope: Annotated[
        TokenScope,
        typer.Option("--scope", help="read: GET and .search; read-write: every operation."),
    ] = TokenScope.read,
) -> None:
    """Issue a token; it is printed once, on stdout, and cannot be shown again."""
    from provisioner.tokens.service import TokenError, create_token

    db = open_db(settings())
    try:
        with db.transaction() as session:
            token = create_token(session, name, scope.scopes())
    except TokenError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    err_console.print(
        f"Token [bold]{name}[/] ({', '.join(sorted(scope.scopes()))}) created. "
        "Copy it now: it is shown only once. Clients send it as 'Authorization: Bearer <token>'."
    )
    console.print(token, highlight=False, soft_wrap=True)


@token_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token: requests with it are refused (401) from now on."""
    from provisioner.tokens.service import TokenError, revoke_token

    db = open_db(settings())
    try:
        with db.transaction() as session:
            revoke_token(session, name)
    except TokenError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    err_console.print(f"Token [bold]{name}[/] revoked.")
