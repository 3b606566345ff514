"""One sandbox OpenID Connect authority served over real HTTPS (uvicorn in a thread, a CA made at
start) for the module, and a relying party (provisioner.console.entra_signin) pointed at it."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

from provisioner.console.entra_signin import EntraSignIn, SignInConfig
from provisioner.sandbox.oidc.app import IdTokenFaults, OidcAuthority
from provisioner.sandbox.oidc.serve import RunningAuthority, running_authority
from provisioner.sandbox.oidc.users import DEFAULT_USERS, SandboxClient, SandboxUser

CLIENT_ID = "console-app"
SECRET = "sandbox-client-secret"
REDIRECT_URI = "https://console.test/console/auth/callback"
MIXED = SandboxUser("mo.mixed@sandbox.example", "Mo Mixed", ("Finance.Reader", "auditor", "Console.Approver"))


@pytest.fixture(scope="package")
def authority() -> Iterator[RunningAuthority]:
    sandbox = OidcAuthority(users=DEFAULT_USERS + (MIXED,),
                            clients=(SandboxClient(CLIENT_ID, (REDIRECT_URI,), SECRET),))
    with running_authority(sandbox) as running:
        yield running


@pytest.fixture
def sandbox(authority: RunningAuthority) -> Iterator[OidcAuthority]:
    yield authority.sandbox
    authority.sandbox.faults = IdTokenFaults()


def config(authority: RunningAuthority, **changes) -> SignInConfig:
    base = dict(authority=authority.authority, client_id=CLIENT_ID, client_secret=SECRET,
                redirect_uri=REDIRECT_URI, ca_file=authority.ca_file)
    return SignInConfig(**{**base, **changes})


@pytest.fixture
def relying_party(authority: RunningAuthority) -> EntraSignIn:
    return EntraSignIn(config(authority))


@pytest.fixture
def browser(authority: RunningAuthority) -> Iterator[httpx.Client]:
    """What the person's browser does, over HTTPS trusting the sandbox CA; redirects not followed
    so that the redirect to the console's callback can be read."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(authority.ca_file)), timeout=10) as client:
        yield client


def pick(browser: httpx.Client, auth_uri: str, username: str) -> dict[str, str]:
    """Open ``auth_uri``, submit the picker form of ``username``; the callback's query parameters."""
    page = browser.get(auth_uri)
    assert page.status_code == 200, page.text
    assert "text/html" in page.headers["content-type"]
    forms = re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
    chosen = [(action, body) for action, body in forms if f'name="username" value="{username}"' in body]
    assert len(chosen) == 1, f"no picker form for {username}"
    action, body = chosen[0]
    fields = {unescape(n): unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body)}
    answer = browser.post(urljoin(str(page.url), unescape(action)), data=fields)
    assert answer.status_code in (302, 303), answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return dict(parse_qsl(urlsplit(location).query))
