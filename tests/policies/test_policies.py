"""Policy files: validation with file:line, evaluation of conditions and lifecycle states."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.policies.evaluate import desired_groups
from provisioner.policies.loader import load_policies, load_policy_file
from provisioner.targets.config import ConfigError, EntraAccounts, EntraAuth, EntraTarget, ManagedGroup

GROUP_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def targets() -> dict[str, EntraTarget]:
    """One Entra target with three managed groups, one of them declared with its object id."""
    return {"entra": EntraTarget(kind="entra", auth=EntraAuth(method="managed_identity"),
                                 accounts=EntraAccounts(domain="example.com"),
                                 managed_groups=[ManagedGroup(name="All Staff"), ManagedGroup(name="Sales"),
                                                 ManagedGroup(name="VPN", id=GROUP_ID)])}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_conditions_all_any_not_prefix_one_of_and_extra(tmp_path, targets):
    write(tmp_path, "p.yaml", f"""
name: sales-vpn
when:
  all:
    - any:
        - {{attribute: department, equals: sales}}
        - {{attribute: job_code, one_of: [SE1, AE1]}}
    - not: {{attribute: location, prefix: "US-"}}
    - {{attribute: extra.remote, equals: "yes"}}
grants:
  entra: {{groups: [Sales, "{GROUP_ID}"]}}
""")
    [policy] = load_policies(tmp_path, targets)
    assert policy.grants["entra"].groups == ["Sales", "VPN"]  # the object id maps to its name
    attrs = {"department": "Sales", "location": "DE-BER", "extra": {"remote": "yes"}}
    assert desired_groups([policy], attrs, "active") == {"entra": {"Sales": ["sales-vpn"], "VPN": ["sales-vpn"]}}
    assert desired_groups([policy], {**attrs, "location": "US-NYC"}, "active") == {}
    assert desired_groups([policy], {**attrs, "department": "HR", "job_code": "AE1"}, "active") != {}
    assert desired_groups([policy], {**attrs, "extra": {}}, "active") == {}
    assert desired_groups([policy], attrs, "terminated") == {}


def test_states_limit_where_grants_apply(tmp_path, targets):
    write(tmp_path, "b.yaml", "name: everyone\nbirthright: true\nstates: [active]\n"
                              "grants:\n  entra: {groups: [All Staff]}\n")
    [policy] = load_policies(tmp_path, targets)
    assert desired_groups([policy], {}, "active") == {"entra": {"All Staff": ["everyone"]}}
    assert desired_groups([policy], {}, "on_leave") == {}


@pytest.mark.parametrize(("text", "line", "message"), [
    ("name: x\ngrants:\n  entra: {groups: [Sales]}\n", 1, "give 'when' conditions, or set 'birthright: true'"),
    ("name: x\nbirthright: true\nstates: [terminated]\ngrants:\n  entra: {groups: [Sales]}\n", 3, "states.0"),
    ("name: x\nwhen:\n  attribute: department\n  equals: a\n  prefix: b\ngrants:\n  entra: {groups: [Sales]}\n",
     3, "exactly one of equals, one_of or prefix"),
    ("name: x\nbirthright: true\ngrants:\n  okta: {groups: [Sales]}\n", 4, "no target named 'okta'"),
])
def test_problems_are_reported_with_file_and_line(tmp_path, targets, text, line, message):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_policy_file(path, targets)
    assert any(p.startswith(f"{path}:{line}:") and message in p for p in info.value.problems), info.value.problems


def test_duplicate_policy_names_are_refused(tmp_path, targets):
    for name in ("a.yaml", "b.yaml"):
        write(tmp_path, name, "name: same\nbirthright: true\ngrants:\n  entra: {groups: [Sales]}\n")
    with pytest.raises(ConfigError) as info:
        load_policies(tmp_path, targets)
    assert "also defined in" in info.value.problems[0]
