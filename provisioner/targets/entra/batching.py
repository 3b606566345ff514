"""Packing operations into Graph requests, and JSON ``$batch`` bodies in and out.

Pure functions, no I/O: the connector sends what is planned here.

Graph facts this relies on (graph.md, "Combine multiple HTTP requests using JSON batching",
"Add members", "Remove member"):

- ``$batch`` takes at most 20 sub-requests. Each has an ``id`` unique in the batch, a
  ``method``, a ``url`` *relative* to the version root (``/users/{id}``), and when it has a
  ``body`` a ``Content-Type`` header. Sub-requests without ``dependsOn`` run in any order.
- ``PATCH /groups/{id}`` with ``members@odata.bind`` adds up to 20 members, all or nothing:
  one member that is already there (400 "One or more added object references already
  exist") fails the whole request. ``POST /groups/{id}/members/$ref`` adds one member.
- ``DELETE /groups/{g}/members/{u}/$ref`` removes one membership; without ``/$ref`` the
  same URL would delete the directory object itself.
- The SDK serialises batch items with absolute URLs and ``dependsOn`` as ``depends_on``,
  and drops sub-response bodies (kiota-python issue 737): bodies are built and parsed here.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from provisioner.targets.contract import (
    AccountSpec,
    OpKind,
    OpResult,
    Outcome,
    TargetOp,
)
from provisioner.targets.entra import mapping as entra_mapping

BATCH_LIMIT = 20  # sub-requests per JSON $batch
BIND_LIMIT = 20  # members per PATCH members@odata.bind
READ_METHODS = frozenset({"GET", "HEAD"})
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Purposes of a sub-request: how its answer is read back into operation results.
CREATE = "create"
BIND = "bind"  # PATCH /groups/{g} members@odata.bind (2..20 members)
REF = "ref"  # POST /groups/{g}/members/$ref (one member)
PLAIN = "plain"  # any other write: the answer is the result of every op it carries
READ = "read"


@dataclass(slots=True)
class SubRequest:
    """One request inside a JSON ``$batch``; ``op_ids`` are the operations it carries."""

    id: str
    method: str
    url: str  # relative to the version root, already URL-encoded
    body: dict[str, Any] | None = None
    op_ids: tuple[int, ...] = ()
    purpose: str = PLAIN
    group_id: str | None = None
    members: dict[str, tuple[int, ...]] = field(default_factory=dict)  # BIND/REF: account -> ops
    key: str | None = None  # READ: what is being read (remote id, group name, ...)

    @property
    def is_write(self) -> bool:
        return self.method.upper() not in READ_METHODS

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method, "url": self.url}
        if self.body is not None:
            item["body"] = self.body
            item["headers"] = {"Content-Type": "application/json"}
        return item


def path_segment(value: str) -> str:
    """An id or UPN as one URL path segment."""
    return quote(value, safe="")


def odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled (OData ABNF ``SQUOTE-in-string``)."""
    return "'" + value.replace("'", "''") + "'"


def query_string(params: dict[str, str]) -> str:
    """``$filter=...&$select=...`` percent-encoded, keeping ``$``, ``,`` and quotes readable."""
    return "&".join(f"{key}={quote(value, safe=chr(39) + ',()$')}" for key, value in params.items())


def relative_url(link: str, base_url: str) -> str:
    """An ``@odata.nextLink`` (absolute) as a URL relative to the version root, for ``$batch``."""
    base = base_url.rstrip("/")
    if link.startswith(base):
        rest = link[len(base) :]
        return rest if rest.startswith("/") else "/" + rest
    parts = urlsplit(link)
    path = parts.path
    for version in ("/v1.0", "/beta"):
        if version in path:
            path = path.split(version, 1)[1]
            break
    return path + (f"?{parts.query}" if parts.query else "")


def chunk(items: Sequence[SubRequest], size: int = BATCH_LIMIT) -> list[list[SubRequest]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def min_calls(sub_requests: int) -> int:
    """The fewest HTTP calls for this many sub-requests: ceil(n / 20)."""
    return math.ceil(sub_requests / BATCH_LIMIT)


def batch_body(items: Iterable[SubRequest]) -> bytes:
    return json.dumps({"requests": [item.to_json() for item in items]}).encode("utf-8")


def parse_batch_response(raw: bytes | str | None) -> dict[str, dict[str, Any]]:
    """Sub-responses by id. Graph may answer them in any order; bodies are JSON objects
    (or base64 strings for non-JSON content, which are kept as given)."""
    if raw is None or raw in (b"", ""):
        raise ValueError("empty $batch response")
    data = json.loads(raw)
    responses = data.get("responses") if isinstance(data, dict) else None
    if not isinstance(responses, list):
        raise ValueError("$batch response without 'responses'")
    out: dict[str, dict[str, Any]] = {}
    for item in responses:
        if isinstance(item, dict) and "id" in item:
            out[str(item["id"])] = item
    return out


# ---- account bodies ---------------------------------------------------------------------

_SYMBOLS = "!@#$%^&*-_=+?"


def random_password(length: int = 24) -> str:
    """A strong random password meeting Entra's policy (8-256 chars, 3 of 4 classes).

    It is only ever set with ``forceChangePasswordNextSignIn``; nobody is meant to know it.
    """
    rng = secrets.SystemRandom()
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits, _SYMBOLS]
    chars = [rng.choice(c) for c in classes]
    pool = "".join(classes)
    chars += [rng.choice(pool) for _ in range(max(length, 12) - len(chars))]
    rng.shuffle(chars)
    return "".join(chars)


def create_user_body(
    spec: AccountSpec, *, usage_location: str | None = None, password: str,
    mapping: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``POST /users`` body: the required accountEnabled, displayName, mailNickname,
    userPrincipalName and passwordProfile, plus the mapped HR properties that have a value
    (:mod:`provisioner.targets.entra.mapping`)."""
    properties = entra_mapping.render(_mapping(mapping, usage_location), spec)
    body: dict[str, Any] = {
        "accountEnabled": spec.enabled,
        "userPrincipalName": spec.login,
        "mailNickname": spec.mail_nickname,
        **({"mail": spec.email} if spec.email else {}),
        **entra_mapping.for_create(properties),
        "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": password},
    }
    return body


def update_user_body(
    spec: AccountSpec, *, usage_location: str | None = None, mapping: dict[str, str] | None = None
) -> dict[str, Any]:
    """``PATCH /users/{id}`` body: every mapped property, ``null`` where HR has no value (a
    value HR cleared is cleared in Entra ID too); ``employeeOrgData`` whole.

    userPrincipalName is changed only by a rename (``on_name_change: rename``; mail and
    mailNickname follow the login), accountEnabled has its own operations, the manager its own
    reference (``SET_MANAGER``).
    """
    body: dict[str, Any] = {"mailNickname": spec.mail_nickname}
    if spec.email:
        body["mail"] = spec.email
    if spec.rename:
        body["userPrincipalName"] = spec.login
    body.update(entra_mapping.render(_mapping(mapping, usage_location), spec))
    return body


def _mapping(mapping: dict[str, str] | None, usage_location: str | None) -> dict[str, str]:
    return mapping if mapping is not None else entra_mapping.effective_mapping({}, usage_location)


def manager_request(
    op: TargetOp, user: str, next_id: Callable[[], str], base_url: str
) -> SubRequest | None:
    """``PUT /users/{id}/manager/$ref`` (``@odata.id`` of the manager as a user) or
    ``DELETE /users/{id}/manager/$ref`` (user-post-manager, user-delete-manager)."""
    url = f"/users/{user}/manager/$ref"
    if op.kind == OpKind.CLEAR_MANAGER:
        return SubRequest(next_id(), "DELETE", url, None, (op.op_id,), PLAIN)
    if not op.manager_id:
        return None
    body = {"@odata.id": f"{base_url.rstrip('/')}/users/{path_segment(op.manager_id)}"}
    return SubRequest(next_id(), "PUT", url, body, (op.op_id,), PLAIN)


# ---- planning writes ----------------------------------------------------------------------


@dataclass(slots=True)
class WritePlan:
    subs: list[SubRequest]
    results: list[OpResult]  # operations refused before sending (missing ids, wrong kind)


class IdCounter:
    """Sub-request ids: unique within a batch (and here within one call)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n}"


def member_ref_requests(
    group_id: str,
    members: dict[str, tuple[int, ...]],
    directory_object_url: Callable[[str], str],
    next_id: Callable[[], str],
) -> list[SubRequest]:
    """One ``POST /groups/{g}/members/$ref`` per member (its own outcome each)."""
    return [
        SubRequest(
            id=next_id(),
            method="POST",
            url=f"/groups/{path_segment(group_id)}/members/$ref",
            body={"@odata.id": directory_object_url(account_id)},
            op_ids=op_ids,
            purpose=REF,
            group_id=group_id,
            members={account_id: op_ids},
        )
        for account_id, op_ids in members.items()
    ]


def plan_writes(
    ops: Sequence[TargetOp],
    *,
    directory_object_url: Callable[[str], str],
    usage_location: str | None = None,
    password_factory: Callable[[], str] = random_password,
    id_prefix: str = "",
    mapping: dict[str, str] | None = None,
    base_url: str = "https://graph.microsoft.com/v1.0",
) -> WritePlan:
    """Turn operations into the fewest write sub-requests.

    - ADD_MEMBER: per group, 20 distinct members per ``PATCH members@odata.bind``; a single
      member goes as ``POST members/$ref`` (same cost, and it answers for itself).
    - Identical writes (same method, URL and body) are sent once and answer every op that
      asked for them; creates are never merged.
    - Everything else: one sub-request per operation.
    """
    next_id = IdCounter(id_prefix)
    subs: list[SubRequest] = []
    refused: list[OpResult] = []
    same: dict[str, SubRequest] = {}
    adds: dict[str, dict[str, list[int]]] = {}  # group -> account -> op ids (insertion order)
    add_slot: dict[str, int] = {}  # group -> index in subs where its requests go

    def refuse(op: TargetOp, why: str) -> None:
        refused.append(OpResult(op.op_id, Outcome.BAD_REQUEST, detail=why))

    def plain(op: TargetOp, method: str, url: str, body: dict[str, Any] | None) -> None:
        key = json.dumps([method, url, body], sort_keys=True)
        if key in same:
            existing = same[key]
            existing.op_ids = existing.op_ids + (op.op_id,)
            return
        sub = SubRequest(next_id(), method, url, body, (op.op_id,), PLAIN)
        same[key] = sub
        subs.append(sub)

    for op in ops:
        kind = op.kind
        user = path_segment(op.account_id) if op.account_id else None
        if kind == OpKind.CREATE_ACCOUNT:
            if op.account is None:
                refuse(op, "create_account needs an account spec")
                continue
            body = create_user_body(
                op.account, usage_location=usage_location, password=password_factory(), mapping=mapping
            )
            subs.append(SubRequest(next_id(), "POST", "/users", body, (op.op_id,), CREATE))
        elif kind in (OpKind.ADD_MEMBER, OpKind.REMOVE_MEMBER):
            if not op.account_id or not op.group_id:
                refuse(op, f"{kind} needs account_id and group_id")
                continue
            if kind == OpKind.ADD_MEMBER:
                if op.group_id not in adds:
                    adds[op.group_id] = {}
                    add_slot[op.group_id] = len(subs)
                    subs.append(None)  # type: ignore[arg-type]  # placeholder, filled below
                adds[op.group_id].setdefault(op.account_id, []).append(op.op_id)
            else:
                url = f"/groups/{path_segment(op.group_id)}/members/{user}/$ref"
                plain(op, "DELETE", url, None)
        elif kind in (OpKind.SET_MANAGER, OpKind.CLEAR_MANAGER):
            sub = manager_request(op, user, next_id, base_url) if user else None
            if sub is None:
                refuse(op, f"{kind} needs account_id (and manager_id to set one)")
                continue
            subs.append(sub)
        elif kind in (
            OpKind.UPDATE_ACCOUNT,
            OpKind.ENABLE_ACCOUNT,
            OpKind.DISABLE_ACCOUNT,
            OpKind.REVOKE_SESSIONS,
            OpKind.DELETE_ACCOUNT,
        ):
            if not user:
                refuse(op, f"{kind} needs account_id")
                continue
            if kind == OpKind.UPDATE_ACCOUNT:
                if op.account is None:
                    refuse(op, "update_account needs an account spec")
                    continue
                body = update_user_body(op.account, usage_location=usage_location, mapping=mapping)
                plain(op, "PATCH", f"/users/{user}", body)
            elif kind in (OpKind.ENABLE_ACCOUNT, OpKind.DISABLE_ACCOUNT):
                enabled = kind == OpKind.ENABLE_ACCOUNT
                plain(op, "PATCH", f"/users/{user}", {"accountEnabled": enabled})
            elif kind == OpKind.REVOKE_SESSIONS:
                plain(op, "POST", f"/users/{user}/revokeSignInSessions", None)
            else:
                plain(op, "DELETE", f"/users/{user}", None)
        else:
            refuse(op, f"{kind} is not a write (the worker reads back with read_account)")

    # Member additions go where each group's first addition was asked for.
    expanded: list[SubRequest] = []
    slots = {index: group for group, index in add_slot.items()}
    for index, sub in enumerate(subs):
        if index not in slots:
            expanded.append(sub)
            continue
        group = slots[index]
        members = [(account, tuple(op_ids)) for account, op_ids in adds[group].items()]
        for start in range(0, len(members), BIND_LIMIT):
            part = dict(members[start : start + BIND_LIMIT])
            if len(part) == 1:
                expanded.extend(member_ref_requests(group, part, directory_object_url, next_id))
                continue
            expanded.append(
                SubRequest(
                    id=next_id(),
                    method="PATCH",
                    url=f"/groups/{path_segment(group)}",
                    body={"members@odata.bind": [directory_object_url(a) for a in part]},
                    op_ids=tuple(i for ids in part.values() for i in ids),
                    purpose=BIND,
                    group_id=group,
                    members=part,
                )
            )
    return WritePlan(expanded, refused)
