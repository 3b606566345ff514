"""The hot-path renderer (``provisioner.scim.hot.render``) gives the body the models give."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import EmailStr, TypeAdapter, ValidationError
from scim2_models import Context

from provisioner.identities.models import Identity
from provisioner.scim.hot.render import list_body, normalised_email, user_dict
from provisioner.scim.protocol import list_response
from provisioner.scim.query import Page, list_query_from_params
from provisioner.scim.schemas import Ref, UserResource, user_from_identity

BASE = "http://testserver/scim/v2"


def _identity(**overrides: Any) -> Identity:
    values: dict[str, Any] = {
        "id": "0b3c1e9e-1111-4a4a-9d9d-000000000001",
        "source": "hr",
        "employee_id": "E1",
        "state": "active",
        "user_name": "alice@example.com",
        "given_name": "Alice",
        "family_name": "Liddell",
        "display_name": "Alice Liddell",
        "preferred_name": None,
        "email": "alice@example.com",
        "department": "R&D",
        "cost_center": None,
        "title": "Engineer",
        "employment_type": "full_time",
        "external_id": None,
        "extra": {},
        "active": True,
        "version": 3,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "updated_at": datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC),
    }
    values.update(overrides)
    return Identity(**values)


CASES = {
    "hr": {},
    "hr-minimal": {
        "given_name": None,
        "family_name": None,
        "display_name": None,
        "title": None,
        "employment_type": None,
        "email": None,
        "department": None,
        "employee_id": None,
    },
    "hr-external-id-nickname-costcenter": {
        "external_id": "ext-1",
        "preferred_name": "Al",
        "cost_center": "CC-9",
    },
    "hr-email-normalised": {"email": "Alice.Liddell@EXAMPLE.COM"},
    "hr-email-invalid": {"email": "not an e-mail"},
    "hr-email-unicode": {"email": "ålice@exämple.com"},
    "hr-inactive-empty-strings": {"active": False, "title": "", "given_name": ""},
    "scim": {"source": "scim", "email": "alice@example.com"},
    "scim-only-given-name": {"source": "scim", "family_name": None, "employee_id": None,
                             "department": None},
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_refs", [False, True])
def test_user_dict_matches_the_models(case: str, with_refs: bool) -> None:
    identity = _identity(**CASES[case])
    groups = [Ref("g-1", "Engineering"), Ref("g-2", None)] if with_refs else []
    manager = Ref("m-1", "Boss") if with_refs else None
    fast = user_dict(identity, base_url=BASE, groups=groups, manager=manager)
    model = user_from_identity(identity, base_url=BASE, groups=groups, manager=manager)
    for ctx in (Context.SEARCH_RESPONSE, Context.RESOURCE_QUERY_RESPONSE):
        assert orjson.dumps(fast) == orjson.dumps(model.model_dump(scim_ctx=ctx)), ctx


def test_list_body_matches_the_models() -> None:
    identity = _identity()
    model = user_from_identity(identity, base_url=BASE, groups=[], manager=None)
    fast = user_dict(identity, base_url=BASE, groups=[], manager=None)
    query = list_query_from_params(UserResource, {})
    for resources, fasts in (([model], [fast]), ([], [])):
        slow = list_response(UserResource, Page(1 if resources else 0, 1, resources), query.response)
        assert orjson.dumps(list_body(len(fasts), 1, fasts)) == slow.body


@pytest.mark.parametrize(
    "extra",
    [
        {"scim": {"attributes": {"phoneNumbers": [{"value": "+1 555"}]}}},
        {"scim": {"activeUnassigned": True}},
    ],
)
def test_identities_with_stored_attributes_are_left_to_the_models(extra: dict[str, Any]) -> None:
    identity = _identity(source="scim", extra=extra)
    assert user_dict(identity, base_url=BASE, groups=None, manager=None) is None


_LOCALS = [
    "alice", "Alice.Liddell", "a.b-c_d+e", "x", "x" * 64, "x" * 65, "1", "-", "a..b", ".a", "a.",
    "postmaster", "PostMaster", "info", "Support", "www", "a!b", "a#b", "o'neil", "ålice",
    '"quoted"', "with space", "", "a@b",
]
_DOMAINS = [
    "example.com", "EXAMPLE.COM", "Bench.Example.com", "a.b.c.d.example.org", "example",
    "localhost", "a.test", "x.invalid", "host.local", "x.onion", "xn--bcher-kva.com",
    "XN--BCHER-KVA.COM", "bücher.com", "-bad.com", "bad-.com", "a_b.com", "123.com", "1.2.3.4",
    "com", "ex..ample.com", ".example.com", "example.com.", "example.123", "a" * 63 + ".com",
    "a" * 64 + ".com", ("a" * 60 + ".") * 4 + "com", ("a" * 50 + ".") * 4 + "com", "",
    "[127.0.0.1]", "exa mple.com",
]


@pytest.mark.parametrize("domain", _DOMAINS)
def test_email_normalisation_matches_email_validator(domain: str) -> None:
    """The per-domain shortcut of ``normalised_email`` gives what ``EmailStr`` gives."""
    adapter = TypeAdapter(EmailStr)
    for local in _LOCALS:
        address = f"{local}@{domain}"
        try:
            expected: str | None = adapter.validate_python(address)
        except ValidationError:
            expected = None
        assert normalised_email(address) == expected, address
