"""Delta query for users and groups (learn.microsoft.com/graph/delta-query-overview,
.../delta-query-users, .../delta-query-groups).

A round starts with ``GET /users/delta`` (or ``/groups/delta``; the SDK calls ``delta()``), pages
through ``@odata.nextLink`` and ends with an ``@odata.deltaLink`` whose ``$deltatoken`` marks the
change-log position the round covered. Following the delta link returns only what changed since:

- objects created or whose *selected* properties changed, with their selected properties
  (``id`` always);
- deleted users as ``{"id": ..., "@removed": {"reason": "changed"}}`` (Entra soft-deletes users,
  so they can still be restored);
- for groups, when ``members`` is tracked (no ``$select``, or ``members`` selected), membership
  changes in ``members@delta``: ``{"@odata.type", "id"}`` for an added member and the same with
  ``"@removed": {"reason": "deleted"}`` for a removed one.

As Graph does for large groups, a group's members are spread over several entries of the same
group (``page_size`` members each), which may land on different pages: consumers must merge.
``$deltatoken=latest`` starts tracking from now without reading the current state. Tokens last
seven days, as for all directory objects; an expired, unknown or foreign token gets
``410 Gone`` with code ``syncStateNotFound`` and a ``Location`` header to restart from.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from provisioner.clock import utcnow
from provisioner.sandbox.graph.errors import SYNC_STATE_NOT_FOUND, GraphError
from provisioner.sandbox.graph.messages import GraphRequest, GraphResponse, JsonObject
from provisioner.sandbox.graph.odata import check_options, context_url, parse_select
from provisioner.sandbox.graph.paging import SKIP_TOKEN, Pages, build_link
from provisioner.sandbox.graph.schema import GROUP, EntityType
from provisioner.sandbox.graph.store import Directory

DELTA_TOKEN = "$deltatoken"
TOKEN_LIFETIME = timedelta(days=7)
MEMBERS = "members"


@dataclass(frozen=True, slots=True)
class _Round:
    """What a delta link resumes from: a change-log position and the tracked properties."""

    seq: int
    select: tuple[str, ...] | None


@dataclass(slots=True)
class _Touched:
    """The net changes to one object within a window of the change log."""

    created: bool = False
    properties: set[str] = field(default_factory=set)
    members: dict[str, tuple[str, bool]] = field(default_factory=dict)  # id -> (@odata.type, added)


class DeltaQuery:
    """Answers ``/users/delta`` and ``/groups/delta`` from the directory's change log."""

    def __init__(self, directory: Directory, pages: Pages, page_size: int) -> None:
        self._directory = directory
        self._pages = pages
        self._page_size = page_size
        # Tokens from another sandbox (e.g. before a restart) are unknown here: 410, as after expiry.
        self._epoch = secrets.token_hex(4)

    def respond(self, request: GraphRequest, entity: EntityType) -> GraphResponse:
        check_options(request.query, ("$select", SKIP_TOKEN, DELTA_TOKEN))
        path = f"/{entity.entity_set}/delta"
        scope = f"delta {entity.entity_set}"
        extra = (MEMBERS,) if entity is GROUP else ()
        select = parse_select(request.query, entity, extra=extra)
        if SKIP_TOKEN in request.query:
            page = self._pages.resume(request, scope=scope)
        else:
            token = request.query.get(DELTA_TOKEN)
            entries: list[JsonObject]
            if token == "latest":
                start, entries = _Round(self._directory.seq, select), []
            elif token:
                since = self._decode(token, request, entity)
                start = _Round(self._directory.seq, select if select is not None else since.select)
                entries = self._changes(entity, since.seq, start.select)
            else:
                start = _Round(self._directory.seq, select)
                entries = self._snapshot(entity, select)
            page = self._pages.first(
                request, scope=scope, items=entries, page_size=self._page_size, link_path=path, state=start
            )
        round_: _Round = page.cursor.state
        fragment = entity.entity_set + (f"({','.join(round_.select)})" if round_.select else "")
        body: JsonObject = {"@odata.context": context_url(fragment), "value": list(page.items)}
        if page.next_link is not None:
            body["@odata.nextLink"] = page.next_link
        else:
            body["@odata.deltaLink"] = build_link(request, path, {DELTA_TOKEN: self._encode(entity, round_)})
        return GraphResponse(200, body)

    # ---- entries -------------------------------------------------------------------------

    def _snapshot(self, entity: EntityType, select: tuple[str, ...] | None) -> list[JsonObject]:
        objects = self._directory.users if entity is not GROUP else self._directory.groups
        entries: list[JsonObject] = []
        for object_id, obj in objects.items():
            members = (
                [
                    (self._directory.object_type(member_id) or "", member_id, True)
                    for member_id in self._directory.member_ids(object_id)
                ]
                if entity is GROUP
                else []
            )
            entries.extend(self._entries(entity, obj, select, members))
        return entries

    def _changes(self, entity: EntityType, since: int, select: tuple[str, ...] | None) -> list[JsonObject]:
        touched: dict[str, _Touched] = {}
        for change in self._directory.changes[since:]:
            if change.entity_set != entity.entity_set:
                continue
            entry = touched.setdefault(change.object_id, _Touched())
            entry.created |= change.created
            entry.properties |= change.properties
            if change.member_id is not None:
                entry.members.pop(change.member_id, None)  # keep the latest change last
                entry.members[change.member_id] = (change.member_type, change.member_added)
        objects = self._directory.users if entity is not GROUP else self._directory.groups
        tracked = entity.readable if select is None else frozenset(select)  # changes that count
        tracks_members = entity is GROUP and (select is None or MEMBERS in select)
        entries: list[JsonObject] = []
        for object_id, touch in touched.items():
            obj = objects.get(object_id)
            if obj is None:
                entries.append({"id": object_id, "@removed": {"reason": "changed"}})
                continue
            members = (
                [(kind, member_id, added) for member_id, (kind, added) in touch.members.items()]
                if tracks_members
                else []
            )
            if touch.created or touch.properties & tracked or members:
                entries.extend(self._entries(entity, obj, select, members))
        return entries

    def _entries(
        self,
        entity: EntityType,
        obj: JsonObject,
        select: tuple[str, ...] | None,
        members: Sequence[tuple[str, str, bool]],
    ) -> list[JsonObject]:
        """The delta entries of one object: one, or one per ``page_size`` member changes."""
        names = entity.default_select if select is None else [name for name in select if name != MEMBERS]
        shaped = {name: obj.get(name) for name in names}
        shaped["id"] = obj["id"]
        if not members:
            return [shaped]
        entries = []
        for start in range(0, len(members), self._page_size):
            chunk = [
                _member_delta(kind, member_id, added)
                for kind, member_id, added in members[start : start + self._page_size]
            ]
            entries.append({**shaped, "members@delta": chunk})
        return entries

    # ---- tokens --------------------------------------------------------------------------

    def _encode(self, entity: EntityType, round_: _Round) -> str:
        issued = int(utcnow().timestamp())
        raw = json.dumps([self._epoch, entity.entity_set, round_.seq, round_.select, issued])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _decode(self, token: str, request: GraphRequest, entity: EntityType) -> _Round:
        try:
            padded = token + "=" * (-len(token) % 4)
            epoch, entity_set, seq, select, issued = json.loads(base64.urlsafe_b64decode(padded))
        except (binascii.Error, ValueError, TypeError):
            raise self._gone(request, entity) from None
        valid = (
            epoch == self._epoch
            and entity_set == entity.entity_set
            and isinstance(seq, int)
            and 0 <= seq <= self._directory.seq
            and isinstance(issued, int)
            and utcnow().timestamp() - issued <= TOKEN_LIFETIME.total_seconds()
            and (select is None or isinstance(select, list))
        )
        if not valid:
            raise self._gone(request, entity)
        return _Round(seq, tuple(select) if select is not None else None)

    @staticmethod
    def _gone(request: GraphRequest, entity: EntityType) -> GraphError:
        return GraphError(
            410,
            SYNC_STATE_NOT_FOUND,
            "The delta token is expired or unknown: restart with a full synchronization.",
            headers={"Location": build_link(request, f"/{entity.entity_set}/delta", {})},
        )


def _member_delta(kind: str, member_id: str, added: bool) -> JsonObject:
    item: JsonObject = {"@odata.type": kind, "id": member_id}
    if not added:
        item["@removed"] = {"reason": "deleted"}
    return item
