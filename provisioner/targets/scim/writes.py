"""Turn operations into as few SCIM write requests as the server's limits allow.

- Membership changes of one group become one PATCH (RFC 7644 §3.5.2) carrying many members
  (``add`` with a value list; ``remove`` per member), up to ``max_members_per_patch``.
- User changes are POST (create), PATCH (update, enable, disable) or DELETE.
- With Bulk offered (§3.7), requests are packed into BulkRequests within ``maxOperations`` and
  ``maxPayloadSize``; deletions go last, after the memberships they would orphan.

Bodies are built with scim2-models (``PatchOp``, ``BulkRequest``); this module does not talk
to the server.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import ValidationError
from scim2_models import BulkOperation, BulkRequest, Context, Group, PatchOp, PatchOperation

from provisioner.targets.contract import OpKind, OpResult, Outcome, TargetOp
from provisioner.targets.scim import mapping
from provisioner.targets.scim.capabilities import Capabilities
from provisioner.targets.scim.config import ScimTarget

USER_ANSWER = {"excludedAttributes": "groups"}  # the User back from a PATCH, without its groups
BULK_OVERHEAD = 200  # bytes of envelope per BulkRequest, a safe margin under maxPayloadSize


@dataclass(slots=True)
class Call:
    """One logical write: a request of its own, or one operation inside a Bulk request."""

    method: str
    path: str
    body: dict[str, Any] | None
    op_ids: list[int]
    purpose: str  # create | user | group | delete
    last: bool = False  # sent after the others (deletions)
    members: list[tuple[int, str, str]] = field(default_factory=list)  # (op id, add|remove, user id)
    group_id: str | None = None
    forms: dict[int, str] = field(default_factory=dict)  # op id -> the form it is sent in (forms.py)
    # Asks the server to answer with the resource (RFC 7644 §3.5.2: with ``attributes`` it
    # MUST return 200 and the resource), so the effect is confirmed without a read. Not in Bulk.
    params: dict[str, str] | None = None
    status: int | None = None  # the answer, once sent (for verification)
    reply: Any = None

    def bulk_operation(self, bulk_id: str) -> dict[str, Any]:
        op: dict[str, Any] = {"method": self.method, "path": "/" + self.path, "bulkId": bulk_id}
        if self.body is not None:
            op["data"] = self.body
        return op


@dataclass(slots=True)
class FallbackWrite:
    """A change made by reading the resource and PUTting it back (no PATCH offered)."""

    op: TargetOp
    active: bool | None = None  # enable/disable
    update: bool = False  # lay the mapped attributes over what the server holds


@dataclass(slots=True)
class WritePlan:
    calls: list[Call] = field(default_factory=list)
    user_puts: list[FallbackWrite] = field(default_factory=list)
    group_puts: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    results: list[OpResult] = field(default_factory=list)  # settled without a request


def seg(value: str) -> str:
    return quote(value, safe="")


def filter_string(value: str) -> str:
    """A filter string literal: a JSON string (RFC 7644 §3.4.2.2), quotes and backslashes escaped."""
    return orjson.dumps(value).decode()


def member_patch(config: ScimTarget, members: Sequence[tuple[int, str, str]],
                 value_list: Collection[int] = ()) -> dict[str, Any]:
    """One PatchOp for a group: the adds as one ``add`` with a value list, each removal as
    ``members[value eq "id"]`` (RFC 7644 §3.5.2.2), or Entra's value-list form for the
    operations in ``value_list`` (or all, when the compatibility profile says so)."""
    every = config.compatibility.remove_member_style == "value_list"
    adds = [{"value": uid} for _, action, uid in members if action == "add"]
    listed = [uid for op_id, action, uid in members if action == "remove" and (every or op_id in value_list)]
    filtered = [uid for op_id, action, uid in members
                if action == "remove" and not (every or op_id in value_list)]
    ops: list[PatchOperation[Group]] = []
    if adds:
        ops.append(PatchOperation[Group](op="add", path="members", value=adds))
    if listed:
        ops.append(PatchOperation[Group](op="remove", path="members", value=[{"value": u} for u in listed]))
    for uid in filtered:
        ops.append(PatchOperation[Group](op="remove", path=f"members[value eq {filter_string(uid)}]"))
    return PatchOp[Group](operations=ops).model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)


FormOf = Callable[[TargetOp], str]


def default_form(caps: Capabilities) -> FormOf:
    """Without learned forms: what the server's configuration offers."""
    def form_of(op: TargetOp) -> str:
        if op.kind in (OpKind.ADD_MEMBER, OpKind.REMOVE_MEMBER):
            return ("patch" if op.kind == OpKind.ADD_MEMBER else "filter") if caps.group_patch else "put"
        return "patch" if caps.patch else "put"
    return form_of


def plan_writes(config: ScimTarget, caps: Capabilities, ops: Sequence[TargetOp],
                user_mapping: dict[str, str], form_of: FormOf | None = None) -> WritePlan:
    """The requests for ``ops``; ``form_of`` names the form of each laddered operation
    (:mod:`provisioner.targets.scim.forms`)."""
    form_of = form_of or default_form(caps)
    plan = WritePlan()
    forms: dict[int, str] = {}
    groups: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    seen: set[int] = set()
    for op in ops:
        if op.op_id in seen:
            continue
        seen.add(op.op_id)
        try:
            forms[op.op_id] = form_of(op)
            _plan_one(plan, groups, forms[op.op_id], op, user_mapping)
        except (ValidationError, ValueError) as exc:
            # scim2-models refuses the value before it is sent (e.g. a work e-mail that is not an
            # address): this operation is a bad request; the others in the round go ahead.
            plan.results.append(OpResult(op.op_id, Outcome.BAD_REQUEST,
                                         detail=f"not a valid SCIM value: {_first_error(exc)}"))
    size = config.compatibility.max_members_per_patch
    for group_id, all_members in groups.items():
        put = [m for m in all_members if forms[m[0]] == "put"]
        if put:
            plan.group_puts[group_id] = put
        members = [m for m in all_members if forms[m[0]] != "put"]
        for start in range(0, len(members), size):
            part = members[start:start + size]
            plan.calls.append(group_call(config, group_id, part, {m[0]: forms[m[0]] for m in part}))
    plan.calls.sort(key=lambda c: c.last)  # stable: deletions after everything else
    return plan


def group_call(config: ScimTarget, group_id: str, members: list[tuple[int, str, str]],
               forms: dict[int, str]) -> Call:
    value_list = {op_id for op_id, form in forms.items() if form == "value_list"}
    return Call("PATCH", f"Groups/{seg(group_id)}", member_patch(config, members, value_list),
                [m[0] for m in members], "group", members=members, group_id=group_id, forms=dict(forms),
                params={"attributes": "members"})


def _plan_one(plan: WritePlan, groups: dict[str, list[tuple[int, str, str]]], form: str,
              op: TargetOp, user_mapping: dict[str, str]) -> None:
    kind = op.kind
    if kind == OpKind.CREATE_ACCOUNT:
        if op.account is None:
            plan.results.append(OpResult(op.op_id, Outcome.BAD_REQUEST, detail="create without account data"))
            return
        plan.calls.append(Call("POST", "Users", mapping.creation_body(user_mapping, op.account),
                               [op.op_id], "create"))
    elif kind in (OpKind.REVOKE_SESSIONS, OpKind.VERIFY_REVOKED):
        plan.results.append(OpResult(op.op_id, Outcome.DONE, detail="SCIM has no sign-in sessions"))
    elif not op.account_id:
        plan.results.append(OpResult(op.op_id, Outcome.NOT_FOUND, detail="no account id"))
    elif kind in (OpKind.ADD_MEMBER, OpKind.REMOVE_MEMBER):
        if not op.group_id:
            plan.results.append(OpResult(op.op_id, Outcome.BAD_REQUEST, detail="group id unknown"))
            return
        action = "add" if kind == OpKind.ADD_MEMBER else "remove"
        groups[op.group_id].append((op.op_id, action, op.account_id))
    elif kind == OpKind.DELETE_ACCOUNT:
        plan.calls.append(Call("DELETE", f"Users/{seg(op.account_id)}", None, [op.op_id], "delete", last=True))
    elif kind in (OpKind.ENABLE_ACCOUNT, OpKind.DISABLE_ACCOUNT):
        active = kind == OpKind.ENABLE_ACCOUNT
        if form == "patch":
            plan.calls.append(Call("PATCH", f"Users/{seg(op.account_id)}", mapping.active_patch(active),
                                   [op.op_id], "user", forms={op.op_id: form},
                                   params=USER_ANSWER))
        else:
            plan.user_puts.append(FallbackWrite(op, active=active))
    elif kind == OpKind.UPDATE_ACCOUNT:
        if op.account is None:
            plan.results.append(OpResult(op.op_id, Outcome.DONE, detail="nothing to update"))
        elif form == "patch":
            plan.calls.append(Call("PATCH", f"Users/{seg(op.account_id)}",
                                   mapping.update_patch(user_mapping, op.account), [op.op_id], "user",
                                   forms={op.op_id: form}, params=USER_ANSWER))
        else:
            plan.user_puts.append(FallbackWrite(op, update=True))
    else:
        plan.results.append(OpResult(op.op_id, Outcome.BAD_REQUEST, detail=f"unsupported operation {kind}"))


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"[:300]
    return str(exc)[:300]


def pack_bulk(calls: Sequence[Call], caps: Capabilities) -> list[list[Call]]:
    """Split calls into Bulk requests within the server's maxOperations and maxPayloadSize
    (RFC 7644 §3.7.4). Deletions start a new request so they run after what precedes them."""
    packs: list[list[Call]] = []
    current: list[Call] = []
    size = BULK_OVERHEAD
    limit = caps.max_payload
    for call in calls:
        item = len(orjson.dumps(call.bulk_operation("0000000000"))) + 1
        new_phase = bool(current) and call.last and not current[-1].last
        # Two changes of one group in one request: servers may apply Bulk operations at once and
        # lose one of them (read-modify-write); the second goes in a later request.
        same_group = call.purpose == "group" and any(c.path == call.path for c in current)
        if current and (len(current) >= caps.max_operations or size + item > limit or new_phase or same_group):
            packs.append(current)
            current, size = [], BULK_OVERHEAD
        current.append(call)
        size += item
    if current:
        packs.append(current)
    return packs


def waves(packs: Sequence[list[Call]]) -> list[list[list[Call]]]:
    """Bulk requests that may go at once: none changes a group an earlier one of its wave does."""
    out: list[list[list[Call]]] = []
    touched: set[str] = set()
    for pack in packs:
        paths = {c.path for c in pack if c.purpose == "group"}
        if not out or paths & touched:
            out.append([])
            touched = set()
        out[-1].append(pack)
        touched |= paths
    return out


def bulk_body(calls: Sequence[Call], fail_on_errors: int | None) -> dict[str, Any]:
    """The BulkRequest (RFC 7644 §3.7.1); each operation's ``bulkId`` is its index, so the
    answers can be matched back whatever order the server gives them in."""
    operations = [BulkOperation[Group if c.purpose == "group" else mapping.ScimUser](**c.bulk_operation(str(i)))
                  for i, c in enumerate(calls)]
    request = BulkRequest[mapping.ScimUser | Group](operations=operations, fail_on_errors=fail_on_errors)
    return request.model_dump(scim_ctx=Context.BULK_REQUEST)
