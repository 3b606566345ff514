"""The one statement of Entra ID's login rules (identities/upn.py) and the login maker that obeys it:
whatever the name, the login made is one Entra ID accepts, with any collision suffix."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.identities import upn
from provisioner.identities.naming import Naming, candidate, login_local_part, with_suffix

TEMPLATE = "{given_name}.{family_name}"


@pytest.mark.parametrize(("value", "fragment"), [
    (".ada@example.com", "starts with '.'"),
    ("ada.@example.com", "ends with '.'"),
    ("a..b@example.com", "'..'"),
    ("x" * 65 + "@example.com", "65 characters"),
    ("a&b@example.com", "'&'"),
    ("zoé@example.com", "'é'"),
    ("a@b@example.com", "2 '@'"),
    ("ada", "0 '@'"),
    ("ada@" + "d" * 45 + ".com", "more than 48"),
    ("x" * 64 + "@" + "d" * 44 + ".com" + "x", "more than 113"),
    ("ada@exa_mple.com", "not a valid DNS name"),
    (None, "not a string"),
])
def test_each_invalid_form_is_named(value, fragment):
    found = upn.problem(value)
    assert found is not None and fragment in found, found


@pytest.mark.parametrize("value", ["x" * 64 + "@example.com", "o'brien@example.com", "a!b#c^d~e_f-g.h@example.com",
                                   "x" * 64 + "@" + "d" * 44 + ".com"])
def test_valid_forms_pass(value):
    assert upn.problem(value) is None


def test_a_suffix_never_takes_a_login_over_64():
    local = login_local_part(TEMPLATE, {"given_name": "A" * 40, "family_name": "B" * 40})
    assert len(local) == 64
    for suffix in (1, 2, 10, 999):
        login = with_suffix(local, "example.com", suffix)
        assert upn.problem(login) is None and len(login.partition("@")[0]) == 64
        assert login.partition("@")[0].endswith(str(suffix) if suffix > 1 else "b")


def test_a_cut_that_lands_on_a_dot_leaves_no_dot_before_the_at():
    local = login_local_part(TEMPLATE, {"given_name": "a" * 63, "family_name": "Smith"})
    assert local == "a" * 63
    assert with_suffix("a" * 62 + ".b", "example.com", 2) == "a" * 62 + "2@example.com"


def test_reserved_logins_are_skipped():
    naming = Naming(reserved=frozenset({"admin", "admin2"}))
    assert candidate(naming, "admin", 1) == ("admin3@example.com", 3)
    assert candidate(naming, "ada", 1) == ("ada@example.com", 1)


@settings(max_examples=400, deadline=None)
@given(given_name=st.text(max_size=120), family_name=st.text(max_size=120), suffix=st.integers(1, 999))
def test_any_name_makes_a_login_entra_accepts(given_name, family_name, suffix):
    local = login_local_part(TEMPLATE, {"given_name": given_name, "family_name": family_name, "employee_id": "E1"})
    login = with_suffix(local, "example.com", suffix)
    assert upn.problem(login) is None, (given_name, family_name, login)
    assert upn.mail_nickname_problem(login.partition("@")[0]) is None
    assert set(login.partition("@")[0]) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-_")
