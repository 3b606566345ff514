"""The user picker page of the sandbox authority's authorize endpoint (server-rendered, no
script): one form per configured user, each submitting the pending request's id."""

from __future__ import annotations

from html import escape

from provisioner.sandbox.oidc.users import SandboxUser

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
          "ul{list-style:none;padding:0}li{margin:.5rem 0}button{font:inherit;padding:.5rem 1rem;"
          "border:1px solid #333;border-radius:4px;background:#f4f4f4;cursor:pointer;min-width:18rem;text-align:left}"
          "button:focus{outline:3px solid #005fcc;outline-offset:2px}.roles{color:#444}")


def picker_page(*, action: str, request_id: str, client_id: str, users: tuple[SandboxUser, ...]) -> str:
    items = []
    for user in users:
        roles = ", ".join(user.roles) if user.roles else "no app role"
        items.append(
            f'<li><form method="post" action="{escape(action)}">'
            f'<input type="hidden" name="request_id" value="{escape(request_id)}">'
            f'<input type="hidden" name="username" value="{escape(user.username)}">'
            f'<button type="submit" data-username="{escape(user.username)}">'
            f'{escape(user.name)} <span class="roles">({escape(user.username)}; {escape(roles)})</span>'
            f'</button></form></li>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>Sign in - sandbox authority</title><style>{_STYLE}</style></head><body><main>'
        '<h1>Pick an account</h1>'
        f'<p>The sandbox OpenID Connect authority signs you in to <strong>{escape(client_id)}</strong> '
        'as one of these people, with their app roles.</p>'
        f'<ul aria-label="Accounts">{"".join(items)}</ul></main></body></html>')


def error_page(message: str) -> str:
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in error</title>'
            f'</head><body><main><h1>Sign-in error</h1><p>{escape(message)}</p></main></body></html>')
