"""Filters (RFC 7644 §3.4.2.2) run as SQL, on SQLite and PostgreSQL.

The first part pins each defect of scim2-filter-parser 0.7.0 and how the endpoint handles it
(see /work/shared/reference/scim.md); the second exercises every operator, logical operator,
grouping and complex attribute through HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser
from scim2_filter_parser.transpilers.sql import Transpiler
from scim2_models import InvalidFilterException
from starlette.testclient import TestClient

from provisioner.scim import repository as repo
from provisioner.scim.filter_parse import parse_filter, prelex
from provisioner.scim.filters import compile_filter
from tests.scim_endpoint.helpers import (
    BASE,
    ENTERPRISE,
    assert_error,
    create_group,
    create_user,
    patch_body,
)

PEOPLE: dict[str, dict[str, Any]] = {
    "alice": {
        "userName": "alice@example.com",
        "displayName": "Alice Smith",
        "title": "Engineer",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [{"value": "alice@example.com", "type": "work", "primary": True}],
        "active": True,
        ENTERPRISE: {"employeeNumber": "1001", "department": "R&D"},
        "externalId": "ext-alice",
    },
    "bob": {
        "userName": "Bob@Example.com",
        "displayName": "Bob Jones",
        "title": "Engineering Manager",
        "emails": [
            {"value": "bob.home@example.net", "type": "home"},
            {"value": "bob@example.com", "type": "work", "primary": True},
        ],
        "active": False,
        ENTERPRISE: {"employeeNumber": "1002", "department": "Sales"},
        "externalId": "EXT-bob",
    },
    "carol": {
        "userName": "carol@example.org",
        "displayName": "Carol 100% Sure",
        "emails": [{"value": "carol@example.org", "type": "home"}],
        "active": True,
        ENTERPRISE: {"employeeNumber": "12345", "department": "R_D"},
    },
    "dave": {
        "userName": "dave_x@example.com",
        "displayName": 'Dave "The Rave"',
        "title": 'say "hi"',
        "active": True,
        ENTERPRISE: {"employeeNumber": "12.5", "department": "RxD"},
    },
    "erin": {
        "userName": "erin\\x@example.com",
        "displayName": "erin smith",
        "title": "engineer",
        "active": True,
    },
}


@pytest.fixture
def people(client: TestClient) -> dict[str, str]:
    """Five users; returns name -> id."""
    found = {name: create_user(client, **attrs)["id"] for name, attrs in _bodies().items()}
    # bob's manager is alice (enterprise manager.value is the manager's id)
    manager = {ENTERPRISE: {"manager": {"value": found["alice"]}}}
    body = patch_body({"op": "add", "value": manager})
    response = client.patch(f"{BASE}/Users/{found['bob']}", json=body)
    assert response.status_code == 200, response.text
    return found


def _bodies() -> dict[str, dict[str, Any]]:
    bodies = {}
    for name, attrs in PEOPLE.items():
        rest = dict(attrs)
        user_name = rest.pop("userName")
        bodies[name] = {"user_name": user_name, **rest}
    return bodies


def search(client: TestClient, filter_text: str, **params: Any) -> Any:
    return client.get(f"{BASE}/Users", params={"filter": filter_text, "count": 1000, **params})


def names(response: Any, people: dict[str, str]) -> set[str]:
    assert response.status_code == 200, response.text
    by_id = {user_id: name for name, user_id in people.items()}
    return {by_id[r["id"]] for r in response.json().get("Resources", [])}


# -- defects of scim2-filter-parser 0.7.0 -----------------------------------------------------


def _library_sql(filter_text: str, attr_map: dict[Any, str]) -> tuple[str, dict[str, Any]]:
    tree = SCIMParser().parse(SCIMLexer().tokenize(filter_text))
    return Transpiler(attr_map).transpile(tree)


def test_defect_unknown_attribute_is_dropped_by_the_library_and_400_here(
    client: TestClient, people: dict[str, str]
) -> None:
    sql, _ = _library_sql('unknownAttr eq "x"', {("userName", None, None): "user_name"})
    assert sql is None  # the library drops the condition: every row would match
    assert_error(search(client, 'unknownAttr eq "x"'), 400, "invalidFilter")
    assert_error(search(client, 'userName eq "x" or unknownAttr eq "x"'), 400, "invalidFilter")
    assert_error(search(client, 'emails[unknown eq "x"]'), 400, "invalidFilter")
    assert_error(search(client, "name.middleName pr"), 400, "invalidFilter")  # not filterable


def test_defect_attribute_names_are_case_insensitive(
    client: TestClient, people: dict[str, str]
) -> None:
    sql, _ = _library_sql('USERNAME eq "x"', {("userName", None, None): "user_name"})
    assert sql is None  # the library's lookup is case-sensitive
    assert names(search(client, 'USERNAME EQ "alice@example.com"'), people) == {"alice"}
    assert names(search(client, 'Emails[TYPE eq "work"].VALUE eq "bob@example.com"'), people) == {
        "bob"
    }
    upper_urn = ENTERPRISE.upper().replace("URN:", "urn:")
    assert names(search(client, f'{upper_urn}:EMPLOYEENUMBER eq "1001"'), people) == {"alice"}
    assert names(
        search(client, 'urn:ietf:params:scim:schemas:core:2.0:User:userName sw "ALICE"'), people
    ) == {"alice"}


def test_defect_true_false_null_are_bound_as_values(
    client: TestClient, people: dict[str, str]
) -> None:
    _, params = _library_sql("active eq false", {("active", None, None): "active"})
    assert params == {"a": "FALSE"}  # the library binds the string 'FALSE'
    assert names(search(client, "active eq false"), people) == {"bob"}
    assert names(search(client, "active eq true"), people) == {"alice", "carol", "dave", "erin"}
    assert names(search(client, "active ne true"), people) == {"bob"}
    assert names(search(client, "title eq null"), people) == {"carol"}
    assert names(search(client, "title ne null"), people) == {"alice", "bob", "dave", "erin"}
    assert_error(search(client, "active gt true"), 400, "invalidFilter")
    assert_error(search(client, "title co null"), 400, "invalidFilter")


def test_defect_like_wildcards_are_escaped(client: TestClient, people: dict[str, str]) -> None:
    _, params = _library_sql('displayName co "%"', {("displayName", None, None): "display_name"})
    assert params == {"a": "%%%"}  # unescaped: LIKE '%%%' matches every row
    assert names(search(client, 'displayName co "%"'), people) == {"carol"}
    assert names(
        search(
            client, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department co "_"'
        ),
        people,
    ) == {"carol"}
    assert names(search(client, 'userName sw "dave_"'), people) == {"dave"}
    assert names(search(client, 'userName co "\\\\"'), people) == {"erin"}  # a backslash
    assert names(search(client, 'displayName ew "%"'), people) == set()


def test_defect_case_sensitivity_follows_case_exact_on_every_engine(
    client: TestClient, people: dict[str, str]
) -> None:
    # caseExact=false (RFC 7643 §4.1.1 userName, §4.1.1 displayName, title...): case ignored,
    # on PostgreSQL too (where LIKE and = are case-sensitive).
    assert names(search(client, 'userName eq "bob@example.com"'), people) == {"bob"}
    assert names(search(client, 'displayName co "SMITH"'), people) == {"alice", "erin"}
    assert names(search(client, 'title sw "ENGINEER"'), people) == {"alice", "bob", "erin"}
    assert names(search(client, 'title ew "manager"'), people) == {"bob"}
    assert names(search(client, 'title gt "ENGINEER"'), people) == {"bob", "dave"}
    # caseExact=true (externalId, id, RFC 7643 §3.1): exact, on SQLite too (where LIKE is not).
    assert names(search(client, 'externalId eq "ext-bob"'), people) == set()
    assert names(search(client, 'externalId eq "EXT-bob"'), people) == {"bob"}
    assert names(search(client, 'externalId co "ext"'), people) == {"alice"}
    assert names(search(client, 'externalId sw "EXT"'), people) == {"bob"}
    assert names(search(client, 'externalId ew "BOB"'), people) == set()
    alice = people["alice"]
    assert names(search(client, f'id eq "{alice.upper()}"'), people) == set()
    assert names(search(client, f'id sw "{alice[:8]}"'), people) == {"alice"}


def test_defect_lexer_gaps_escaped_quotes_numbers_and_many_parameters(
    client: TestClient, people: dict[str, str]
) -> None:
    # The library's lexer: no escaped quotes, one digit per NUMBER token, no decimals.
    with pytest.raises(Exception):  # noqa: B017 - whatever the library raises
        _library_sql('title eq "say \\"hi\\""', {("title", None, None): "title"})
    with pytest.raises(Exception):  # noqa: B017
        _library_sql("x eq 12", {("x", None, None): "x"})
    with pytest.raises(IndexError):  # at most 26 parameters
        _library_sql(" or ".join(f'x eq "{i}"' for i in range(27)), {("x", None, None): "x"})

    normalised, literals = prelex('title eq "say \\"hi\\"" and x eq 12 or y ge -1.5e2')
    assert literals == ['say "hi"', 12, -150.0]
    assert normalised == 'title eq "$lit0" and x eq "$lit1" or y ge "$lit2"'
    assert names(search(client, 'title eq "say \\"hi\\""'), people) == {"dave"}
    assert names(search(client, 'displayName eq "Dave \\"The Rave\\""'), people) == {"dave"}
    number = f"{ENTERPRISE}:employeeNumber"
    assert names(search(client, f"{number} eq 12345"), people) == {"carol"}
    assert names(search(client, f"{number} eq 12.5"), people) == {"dave"}
    assert names(search(client, f"{number} eq 1001"), people) == {"alice"}
    many = " or ".join(f'userName eq "nobody{i}@example.com"' for i in range(40))
    assert names(search(client, f'{many} or userName eq "alice@example.com"'), people) == {"alice"}
    assert_error(search(client, 'title eq "unterminated'), 400, "invalidFilter")
    assert_error(search(client, "title eq"), 400, "invalidFilter")
    assert_error(search(client, 'title regex "x"'), 400, "invalidFilter")


def test_defect_and_binds_tighter_than_or(client: TestClient, people: dict[str, str]) -> None:
    # scim2-filter-parser gives "and" and "or" the same precedence (left to right).
    tree, _ = parse_filter('a eq "1" or b eq "2" and c eq "3"')
    assert tree.expr.op == "and"  # the library's tree: (a or b) and c
    # RFC 7644 §3.4.2.2: a or (b and c)
    flt = 'userName eq "carol@example.org" or title sw "engineer" and active eq false'
    assert names(search(client, flt), people) == {"carol", "bob"}
    flt = 'title sw "engineer" and active eq false or userName eq "carol@example.org"'
    assert names(search(client, flt), people) == {"carol", "bob"}
    flt = '(userName eq "carol@example.org" or title sw "engineer") and active eq false'
    assert names(search(client, flt), people) == {"bob"}


def test_defect_value_filters_apply_to_one_value(
    client: TestClient, people: dict[str, str]
) -> None:
    # The library ANDs sub-attribute conditions over one shared JOIN row; here a value path is
    # one EXISTS/IN, so both conditions must hold for the same member.
    group = create_group(client, "Same value", [people["alice"], people["bob"]])
    response = client.get(
        f"{BASE}/Groups",
        params={"filter": f'members[value eq "{people["alice"]}" and display eq "Bob Jones"]'},
    )
    assert response.json()["totalResults"] == 0
    response = client.get(
        f"{BASE}/Groups",
        params={"filter": f'members[value eq "{people["bob"]}" and display eq "bob jones"]'},
    )
    assert [r["id"] for r in response.json()["Resources"]] == [group["id"]]


def test_unknown_filter_shapes_are_invalid_filter_before_sql() -> None:
    for text in [
        'meta.lastModified gt "not a date"',
        'emails[type eq "work"][value eq "x"]',
        'name[givenName eq "x"]',
        'active eq "maybe"',
        "userName eq true",
    ]:
        with pytest.raises(InvalidFilterException):
            compile_filter(repo.USER_FILTERS, text, "sqlite")


# -- operators, logic, grouping and complex attributes ---------------------------------------


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ('userName eq "ALICE@example.com"', {"alice"}),
        ('userName ne "alice@example.com"', {"bob", "carol", "dave", "erin"}),
        ('displayName co "o"', {"bob", "carol"}),
        ('userName sw "b"', {"bob"}),
        ('userName ew ".ORG"', {"carol"}),
        ('userName gt "carol@example.org"', {"dave", "erin"}),
        ('userName ge "carol@example.org"', {"carol", "dave", "erin"}),
        ('userName lt "bob@example.com"', {"alice"}),
        ('userName le "bob@example.com"', {"alice", "bob"}),
        ("title pr", {"alice", "bob", "dave", "erin"}),
        ("name.givenName pr", {"alice"}),
        ('name.familyName eq "smith"', {"alice"}),
        ('title eq "engineer" and displayName sw "alice"', {"alice"}),
        ('title eq "engineer" or userName sw "carol"', {"alice", "erin", "carol"}),
        ('not (title eq "engineer")', {"bob", "carol", "dave"}),
        ("not (title pr) or active eq false", {"carol", "bob"}),
        ('(title eq "engineer" or title eq "x") and not (userName sw "erin")', {"alice"}),
        ('not (not (userName sw "a"))', {"alice"}),
        ('emails[type eq "work"].value eq "BOB@example.com"', {"bob"}),
        ('emails[type eq "work" and value co "alice"]', {"alice"}),
        ('emails[type eq "home"]', set()),  # only the work e-mail is indexed (see schemas.py)
        ('emails.value ew "example.com"', {"alice", "bob"}),
        ('emails eq "alice@example.com"', {"alice"}),
        ("emails pr", {"alice", "bob"}),
        (f'{ENTERPRISE}:department eq "r&d"', {"alice"}),
        (f'{ENTERPRISE}:department sw "R"', {"alice", "carol", "dave"}),
        (f"{ENTERPRISE}:employeeNumber pr and active eq true", {"alice", "carol", "dave"}),
        (f"{ENTERPRISE}:manager pr", {"bob"}),
        ('meta.resourceType eq "User"', {"alice", "bob", "carol", "dave", "erin"}),
        ('meta.resourceType eq "Group"', set()),
        ('meta.created gt "2000-01-01T00:00:00Z"', {"alice", "bob", "carol", "dave", "erin"}),
        ('meta.lastModified lt "2000-01-01T00:00:00Z"', set()),
    ],
)
def test_operator(
    client: TestClient, people: dict[str, str], filter_text: str, expected: set[str]
) -> None:
    assert names(search(client, filter_text), people) == expected


def test_manager_and_group_filters(client: TestClient, people: dict[str, str]) -> None:
    flt = f'{ENTERPRISE}:manager.value eq "{people["alice"]}"'
    assert names(search(client, flt), people) == {"bob"}
    group = create_group(client, "Engineers", [people["alice"], people["erin"]])
    assert names(search(client, f'groups.value eq "{group["id"]}"'), people) == {"alice", "erin"}
    assert names(search(client, 'groups[display eq "engineers"]'), people) == {"alice", "erin"}
    assert names(search(client, "not (groups pr)"), people) == {"bob", "carol", "dave"}
    member_filter = f'members.value eq "{people["erin"]}"'
    response = client.get(f"{BASE}/Groups", params={"filter": member_filter})
    assert [r["id"] for r in response.json()["Resources"]] == [group["id"]]
    response = client.get(f"{BASE}/Groups", params={"filter": 'displayName eq "ENGINEERS"'})
    assert response.json()["totalResults"] == 1


def test_search_with_post_body(client: TestClient, people: dict[str, str]) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'title sw "engineer"',
        "attributes": ["userName"],
        "sortBy": "userName",
        "startIndex": 1,
        "count": 2,
    }
    response = client.post(f"{BASE}/Users/.search", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["totalResults"] == 3
    assert [r["userName"] for r in data["Resources"]] == ["alice@example.com", "Bob@Example.com"]
    assert all(set(r) <= {"schemas", "id", "userName"} for r in data["Resources"])
