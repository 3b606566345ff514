"""The hot read path (``provisioner.scim.hot.middleware``) answers exactly what the ordinary path
answers — status, headers and body, byte for byte — and passes on whatever it does not serve.

Each request is sent twice: to the application as ``mount_scim`` builds it (the hot path in
front), with a recorder between the hot path and the ordinary stack that counts the requests
the hot path passed on; and to the same SCIM sub-application mounted without the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from provisioner.db import Database
from provisioner.scim.app import create_scim_app
from provisioner.scim.hot.middleware import ScimHotReads
from provisioner.tokens.service import create_token, revoke_token
from tests.scim_endpoint.helpers import (
    BASE,
    ENTERPRISE,
    assert_error,
    seed_hr_identity,
    seed_policy_group,
    user_body,
)


class _Recorder:
    """The ordinary stack behind the hot path, counting what reaches it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.passed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.passed += 1
        await self.app(scope, receive, send)


@dataclass
class Pair:
    db: Database
    hot: TestClient
    plain: TestClient
    recorder: _Recorder
    tokens: dict[str, str]
    people: dict[str, str]

    def same(self, path: str, *, hot: bool, token: str = "rw", **kwargs: Any) -> Any:
        """Send to both; the answers must be identical; ``hot``: answered by the hot path."""
        headers = {"Authorization": f"Bearer {self.tokens[token]}", **kwargs.pop("headers", {})}
        before = self.recorder.passed
        mine = self.hot.get(path, headers=headers, **kwargs)
        answered_hot = self.recorder.passed == before
        theirs = self.plain.get(path, headers=headers, **kwargs)
        assert mine.status_code == theirs.status_code, (mine.text, theirs.text)
        assert mine.headers.multi_items() == theirs.headers.multi_items()
        assert mine.content == theirs.content
        assert answered_hot is hot, f"hot path {'passed on' if hot else 'answered'} {path}"
        return mine


def _plain_app(db: Database) -> FastAPI:
    app = FastAPI()
    app.state.db = db
    app.mount(BASE, create_scim_app(app))
    return app


@pytest.fixture
def pair(db: Database) -> Iterator[Pair]:
    plain = _plain_app(db)
    recorder = _Recorder(_plain_app(db))
    middleware = ScimHotReads(recorder, prefix=BASE)

    async def hot_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = recorder.app  # as Starlette sets it before the middleware stack
        await middleware(scope, receive, send)

    with db.transaction() as session:
        tokens = {
            "rw": create_token(session, "hot-rw", {"scim:read", "scim:write"}),
            "ro": create_token(session, "hot-ro", {"scim:read"}),
            "other": create_token(session, "hot-other", {"auditor"}),
        }
    tokens["unknown"] = "not-a-token"
    plain_client = TestClient(plain)
    people = _seed(db, plain_client, tokens["rw"])
    with TestClient(hot_app) as hot_client:
        yield Pair(db, hot_client, plain_client, recorder, tokens, people)
    plain_client.close()


def _seed(db: Database, client: TestClient, token: str) -> dict[str, str]:
    bob = seed_hr_identity(
        db, employee_id="E1", user_name="bob@example.com", given_name="Bob",
        family_name="Boss", display_name="Bob Boss", email="bob@example.com",
    )
    alice = seed_hr_identity(
        db, employee_id="E2", user_name="Alice@Example.com", given_name="Alice",
        family_name="Liddell", display_name="Alice Liddell", email="Alice@EXAMPLE.com",
        manager_employee_id="E1", department="R&D", cost_center="CC-1", title="Engineer",
        employment_type="full_time", external_id="ext-alice",
    )
    carol = seed_hr_identity(db, employee_id="E3", user_name="alix@example.com", active=False,
                             email="not an address", manager_employee_id="E404")
    emile = seed_hr_identity(db, employee_id="E4", user_name="émile@example.com")
    seed_policy_group(db, "Engineering", [alice, bob])
    seed_policy_group(db, "all-staff", [alice])
    headers = {"Authorization": f"Bearer {token}"}
    plain = client.post(f"{BASE}/Users", headers=headers, json=user_body(
        "svc-backup", name={"givenName": "Backup"}, externalId="ext-svc", active=True))
    stored = client.post(f"{BASE}/Users", headers=headers, json=user_body(
        "svc-stored", locale="de-DE", **{ENTERPRISE: {"organization": "Ops"}}))
    gone = client.post(f"{BASE}/Users", headers=headers, json=user_body("svc-gone"))
    assert {plain.status_code, stored.status_code, gone.status_code} == {201}
    assert client.delete(f"{BASE}/Users/{gone.json()['id']}", headers=headers).status_code == 204
    return {
        "alice": alice, "bob": bob, "carol": carol, "emile": emile,
        "svc": plain.json()["id"], "stored": stored.json()["id"], "gone": gone.json()["id"],
    }


def _filter(text_: str, **params: Any) -> dict[str, Any]:
    return {"params": {"filter": text_, **params}}


@pytest.mark.parametrize(
    "filter_text",
    [
        'userName eq "alice@example.com"',
        'USERNAME EQ "ALICE@EXAMPLE.COM"',
        'userName eq "nobody@example.com"',
        'userName eq "svc-gone"',
        'externalId eq "ext-alice"',
        'externalId eq "EXT-ALICE"',
        'externalId eq "ext-svc"',
        'userName sw "al"',
        'userName sw "AL"',
        'userName sw "svc-b"',
        'userName sw "zz"',
        'userName sw "bob@example.com"',
        'userName sw "a\\"b%_"',
        # Longer than the columns (userName 256, externalId 256): no user matches, on both paths.
        f'userName eq "{"x" * 300}"',
        f'externalId eq "{"x" * 300}"',
        f'id eq "{"x" * 300}"',
        f'userName sw "{"al" * 150}"',
    ],
)
def test_lookups_are_answered_as_the_ordinary_path_does(pair: Pair, filter_text: str) -> None:
    pair.same(f"{BASE}/Users", hot=True, **_filter(filter_text))


def test_id_eq_and_get_by_id(pair: Pair) -> None:
    for name in ("alice", "bob", "carol", "emile", "svc"):
        user_id = pair.people[name]
        pair.same(f"{BASE}/Users/{user_id}", hot=True)
        pair.same(f"{BASE}/Users", hot=True, **_filter(f'id eq "{user_id}"'))
        pair.same(f"{BASE}/Users", hot=True, token="ro", **_filter(f'id eq "{user_id}"'))


def test_a_users_manager_and_groups_are_rendered(pair: Pair) -> None:
    body = pair.same(f"{BASE}/Users/{pair.people['alice']}", hot=True).json()
    assert body[ENTERPRISE]["manager"]["value"] == pair.people["bob"]
    assert [group["display"] for group in body["groups"]] == ["Engineering", "all-staff"]
    assert body["emails"][0]["value"] == "Alice@example.com"


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/Users/{stored}", {}),  # attributes beyond the columns: rendered by the models
        ("/Users", _filter('userName eq "svc-stored"')),
        ("/Users/{gone}", {}),  # 404
        ("/Users/no-such-id", {}),
        ("/Users/{alice}", {"params": {"attributes": "userName"}}),
        ("/Users/{alice}", {"headers": {"If-None-Match": 'W/"1"'}}),  # 304
        ("/Users/{alice}", {"headers": {"If-None-Match": 'W/"9"'}}),
        ("/Users", _filter('userName sw "al"', count="1")),  # full page: COUNT
        ("/Users", _filter('userName sw "al"', count="0")),
        ("/Users", _filter('userName sw "al"', startIndex="2")),
        ("/Users", _filter('userName sw "al"', sortBy="userName")),
        ("/Users", _filter('userName sw ""')),
        ("/Users", _filter('userName eq "a" or userName eq "b"')),
        ("/Users", _filter('displayName eq "Alice Liddell"')),
        ("/Users", _filter('userName eq "x"', attributes="id")),
        ("/Users", _filter("userName eq ")),  # 400 invalidFilter
        ("/Users", _filter('userName\teq "alice@example.com"')),  # a tab: the lexer takes it
        ("/Users", {}),
        ("/Users", {"params": {"count": "5"}}),
        ("/Users/.search", {}),
        ("/Users/" + "x" * 300, {}),  # an id longer than the column: 404
    ],
)
def test_everything_else_is_passed_on(pair: Pair, path: str, kwargs: dict[str, Any]) -> None:
    pair.same(BASE + path.format(**pair.people), hot=False, **kwargs)


@pytest.mark.parametrize(
    "filter_text",
    [
        'userName eq "alice@example.com"\r',  # whitespace the filter lexer refuses
        'userName eq "alice@example.com"\n',
        'userName\u2003eq "alice@example.com"',
        'userName \u017fw "al"',  # LATIN SMALL LETTER LONG S: "s" only under Unicode case folding
        'userName eq "\\ud800"',  # an unpaired surrogate (JSON escape)
        'userName eq "a\\u0000b"',  # NUL: a PostgreSQL text cannot hold it
        'userName eq "a\u0000b"',
        'id eq "\\udfff"',
        # Beyond the filter limits (depth, comparisons): 400 invalidFilter, never a 500.
        "(" * 500 + 'userName eq "alice@example.com"' + ")" * 500,
        " or ".join(f'id eq "{i}"' for i in range(2000)),
    ],
)
def test_filters_the_ordinary_path_refuses_are_passed_on_and_refused(pair: Pair, filter_text: str) -> None:
    response = pair.same(f"{BASE}/Users", hot=False, **_filter(filter_text))
    assert_error(response, 400, "invalidFilter")
    # A refused value never reached the held connection: the hot path still answers.
    pair.same(f"{BASE}/Users", hot=True, **_filter('userName eq "alice@example.com"'))


@pytest.mark.parametrize("token", ["unknown", "other"])
def test_tokens_the_hot_path_does_not_accept_are_answered_by_the_ordinary_path(
    pair: Pair, token: str
) -> None:
    response = pair.same(f"{BASE}/Users/{pair.people['alice']}", hot=False, token=token)
    assert response.status_code == (401 if token == "unknown" else 403)
    pair.same(f"{BASE}/Users", hot=False, token=token, **_filter('userName sw "al"'))


def test_a_missing_or_malformed_authorization_is_answered_by_the_ordinary_path(
    pair: Pair,
) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        before = pair.recorder.passed
        mine = pair.hot.get(f"{BASE}/Users/{pair.people['alice']}", headers=headers)
        assert pair.recorder.passed == before + 1
        assert mine.status_code == 401


def test_a_revoked_token_is_refused_at_once(pair: Pair) -> None:
    with pair.db.transaction() as session:
        pair.tokens["short"] = create_token(session, "hot-short", {"scim:read"})
    pair.same(f"{BASE}/Users/{pair.people['bob']}", hot=True, token="short")
    with pair.db.transaction() as session:
        revoke_token(session, "hot-short")
    response = pair.same(f"{BASE}/Users/{pair.people['bob']}", hot=False, token="short")
    assert response.status_code == 401


def test_changes_are_seen_at_once(pair: Pair) -> None:
    user_id = pair.people["svc"]
    headers = {"Authorization": f"Bearer {pair.tokens['rw']}"}
    pair.same(f"{BASE}/Users/{user_id}", hot=True)
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Backup Service"}],
    }
    assert pair.plain.patch(f"{BASE}/Users/{user_id}", headers=headers, json=patch).is_success
    body = pair.same(f"{BASE}/Users/{user_id}", hot=True).json()
    assert body["displayName"] == "Backup Service"
    assert body["meta"]["version"] == 'W/"2"'


def test_non_ascii_prefixes(pair: Pair) -> None:
    """SQLite ranges any prefix; PostgreSQL leaves non-ASCII prefixes to the ordinary path
    (its lower() is the locale's, not Python's)."""
    hot = pair.db.dialect == "sqlite"
    pair.same(f"{BASE}/Users", hot=hot, **_filter('userName sw "émi"'))
    pair.same(f"{BASE}/Users", hot=hot, **_filter('userName sw "É"'))


def test_disposing_the_database_closes_the_held_connections(pair: Pair) -> None:
    pair.same(f"{BASE}/Users/{pair.people['bob']}", hot=True)
    pair.same(f"{BASE}/Users", hot=True, **_filter('userName sw "al"'))
    if pair.db.dialect != "postgresql":
        pytest.skip("a SQLite file has no server-side sessions to count")
    pair.db.dispose()
    engine = create_engine(pair.db.url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            others = conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ))
    finally:
        engine.dispose()
    assert others == 0
    pair.same(f"{BASE}/Users/{pair.people['bob']}", hot=True)  # connects again
