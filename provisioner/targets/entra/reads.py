"""The Entra connector's reads: accounts and groups read back, described and listed, and the
changes since the last read (Graph delta queries, :mod:`provisioner.targets.changes`).

Bulk reads of single objects go as ``$batch``es of GETs (``EntraConnector._execute``). Lists
(a group's members, a delta round) are read page by page, each page sent through the SDK's
request adapter as raw bytes and parsed here: building msgraph model objects costs about
14 ms of CPU per member, which at company size is most of a reconciliation. ``@odata.nextLink``
is followed as Graph gives it, to the end (or, in a delta round, to the ``@odata.deltaLink``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from provisioner.targets.changes import ChangesExpired, GroupChanges, UserChanges
from provisioner.targets.contract import AccountInfo, AccountState, Outcome, TargetError
from provisioner.targets.entra import batching, errors
from provisioner.targets.entra.batching import SubRequest

if TYPE_CHECKING:
    from provisioner.targets.entra.client import GraphClient
    from provisioner.targets.entra.connector import SubAnswer

_ERRORS: dict[str, Any] = {"XXX": ODataError}
USER_SELECT = "id,accountEnabled,userPrincipalName"
MEMBER_PAGE = 999  # Graph's largest $top for members and memberOf
DESCRIBE_SELECT = "id,userPrincipalName,displayName,employeeId,accountEnabled"
IN_LIMIT = 15  # values in one $filter ``in (...)``: Graph refuses more (Request_UnsupportedQuery)
GROUP_DELTA_SELECT = "displayName,members"  # members: membership changes come as members@delta
USER_DELTA_SELECT = "id,accountEnabled"  # only what drift compares: fewer changes to read
SYNC_STATE_NOT_FOUND = "syncStateNotFound"
MAX_PAGES = 1_000_000  # a guard against a target that links a page to itself


class EntraReads:
    """Read methods of :class:`provisioner.targets.entra.connector.EntraConnector`."""

    graph: GraphClient

    async def _execute(self, subs: Sequence[SubRequest]) -> dict[str, SubAnswer]:
        raise NotImplementedError  # EntraConnector's

    async def read_account(self, remote_id: str, group_ids: Sequence[str]) -> AccountState:
        """One account's state and direct memberships among ``group_ids`` (one ``$batch``)."""
        return (await self.read_accounts([remote_id], group_ids))[remote_id]

    async def read_accounts(
        self, remote_ids: Sequence[str], group_ids: Sequence[str], *, all_groups: bool = False
    ) -> dict[str, AccountState]:
        """Read back accounts through ``$batch``es of GETs (dry-run safe).

        Per account: ``/users/{id}?$select=id,accountEnabled,userPrincipalName`` and, when
        groups are asked about (or ``all_groups``), ``/users/{id}/memberOf/microsoft.graph.group
        ?$select=id,displayName`` (direct memberships; the type cast leaves out roles and
        administrative units); ``@odata.nextLink`` pages are followed in later batches. With
        ``all_groups`` every group listed lands in ``AccountState.all_groups``. A 404 means
        the account does not exist; any other failure raises ``TargetError``.
        """
        wanted = set(group_ids)
        ids = list(dict.fromkeys(remote_ids))
        states: dict[str, AccountState] = {
            rid: AccountState(remote_id=rid, exists=True, enabled=None, group_ids=set(),
                              all_groups={} if all_groups else None,
                              groups_source="memberOf" if all_groups else "")
            for rid in ids
        }
        member_query = batching.query_string({"$select": "id,displayName", "$top": str(MEMBER_PAGE)})
        user_query = batching.query_string({"$select": USER_SELECT})
        counter = batching.IdCounter("g")
        pending: list[SubRequest] = []
        for rid in ids:
            seg = batching.path_segment(rid)
            pending.append(SubRequest(counter(), "GET", f"/users/{seg}?{user_query}", purpose="user", key=rid))
            if wanted or all_groups:
                pending.append(
                    SubRequest(
                        counter(),
                        "GET",
                        f"/users/{seg}/memberOf/microsoft.graph.group?{member_query}",
                        purpose="memberOf",
                        key=rid,
                    )
                )
        while pending:
            answers = await self._execute(pending)
            follow: list[SubRequest] = []
            for sub in pending:
                answer = answers[sub.id]
                state = states[sub.key or ""]
                outcome = answer.mapped.outcome
                if outcome == Outcome.NOT_FOUND and not answer.whole_batch:
                    state.exists = False
                    state.enabled = None
                    state.group_ids = set()
                    continue
                if outcome != Outcome.DONE:
                    raise answer.mapped.error() from answer.error
                body = answer.body if isinstance(answer.body, dict) else {}
                if sub.purpose == "user":
                    state.enabled = body.get("accountEnabled")
                    state.raw = body
                    continue
                for obj in body.get("value") or []:
                    gid = obj.get("id") if isinstance(obj, dict) else None
                    if gid in wanted:
                        state.group_ids.add(gid)
                    if gid and state.all_groups is not None:
                        state.all_groups[str(gid)] = str(obj.get("displayName") or "")
                link = body.get("@odata.nextLink")
                if link:
                    url = batching.relative_url(link, self.graph.base_url)
                    follow.append(SubRequest(counter(), "GET", url, purpose="memberOf", key=sub.key))
            pending = follow
        for state in states.values():
            if not state.exists:
                state.group_ids = set()
                state.all_groups = {} if all_groups else None
        return states

    async def resolve_groups(self, keys: Sequence[str]) -> dict[str, str]:
        """Group names to ids via ``GET /groups?$filter=displayName eq '...'`` in ``$batch``.

        A key shaped like a GUID is taken as an id as it is. A name held by two groups
        raises ``TargetError`` (BAD_REQUEST): picking one would be a guess.
        """
        resolved: dict[str, str] = {}
        subs: list[SubRequest] = []
        counter = batching.IdCounter("n")
        for key in dict.fromkeys(keys):
            if batching.GUID_RE.match(key):
                resolved[key] = key
                continue
            query = batching.query_string(
                {"$filter": f"displayName eq {batching.odata_string(key)}", "$select": "id,displayName"}
            )
            subs.append(SubRequest(counter(), "GET", f"/groups?{query}", purpose="group", key=key))
        if not subs:
            return resolved
        for sub, body in await self._read_all(subs):
            found = [g for g in body.get("value") or [] if isinstance(g, dict) and g.get("id")]
            if len(found) > 1:
                raise TargetError(
                    Outcome.BAD_REQUEST,
                    f"{len(found)} groups are named {sub.key!r}; give the id in the target file",
                )
            if found:
                resolved[sub.key or ""] = str(found[0]["id"])
        return resolved

    async def _read_all(self, subs: list[SubRequest]) -> list[tuple[SubRequest, dict[str, Any]]]:
        """Reads in ``$batch``: each sub-request with its JSON body; any failed one raises
        ``TargetError`` (a partial answer is no answer). A 403 on a read is our permission to
        read (``User.Read.All``, ``GroupMember.Read.All``), not one object's protection as a 403
        on a write sub-request is: the whole target refuses us (STOP: halted, not dead-lettered)."""
        answers = await self._execute(subs)
        out: list[tuple[SubRequest, dict[str, Any]]] = []
        for sub in subs:
            answer = answers[sub.id]
            mapped = answer.mapped
            if mapped.status_code == 403:
                mapped = errors.Mapped(Outcome.STOP, mapped.detail, None, 403, mapped.code)
            if mapped.outcome != Outcome.DONE:
                raise mapped.error() from answer.error
            out.append((sub, answer.body if isinstance(answer.body, dict) else {}))
        return out

    async def describe_accounts(self, remote_ids: Sequence[str]) -> dict[str, AccountInfo]:
        """Who the accounts are: ``GET /users?$filter=id in (...)`` with 15 ids each (Graph's
        limit for ``in``) and ``$select``, packed 20 to a ``$batch`` (300 accounts per call).
        Ids that are not users (deleted, or a group or device among a group's members) are
        left out; a failed sub-request raises ``TargetError``."""
        ids = list(dict.fromkeys(remote_ids))
        counter = batching.IdCounter("d")
        subs: list[SubRequest] = []
        for start in range(0, len(ids), IN_LIMIT):
            chunk = ids[start:start + IN_LIMIT]
            query = batching.query_string({
                "$filter": f"id in ({','.join(batching.odata_string(i) for i in chunk)})",
                "$select": DESCRIBE_SELECT, "$top": str(IN_LIMIT)})
            subs.append(SubRequest(counter(), "GET", f"/users?{query}", purpose="describe"))
        found: dict[str, AccountInfo] = {}
        for _sub, body in await self._read_all(subs):
            for user in body.get("value") or []:
                if isinstance(user, dict) and user.get("id"):
                    rid = str(user["id"])
                    found[rid] = AccountInfo(rid, user.get("userPrincipalName"), user.get("displayName"),
                                             user.get("employeeId"), user.get("accountEnabled"))
        return found

    async def group_member_ids(self, group_id: str) -> set[str]:
        """All direct member ids: every page of ``/groups/{id}/members?$select=id&$top=999``."""
        query = batching.query_string({"$select": "id", "$top": str(MEMBER_PAGE)})
        url = f"{self.graph.base_url}/groups/{batching.path_segment(group_id)}/members?{query}"
        ids: set[str] = set()
        async for page in self._pages(url):
            # Interned: a person in 8 groups is one id string, not 8 (160,000 memberships, 20,000 ids).
            ids.update(sys.intern(str(obj["id"])) for obj in page.get("value") or []
                       if isinstance(obj, dict) and obj.get("id"))
        return ids

    # ---- changes since the last read (Graph delta queries) --------------------------------

    async def group_changes(self, link: str | None) -> GroupChanges:
        """``GET /groups/delta?$select=displayName,members`` from ``link`` to the next
        ``@odata.deltaLink``: each group's ``members@delta`` (``@removed``: left), merged over
        the entries and pages Graph spreads a large group across, the latest change last. With
        ``link=None``: ``$deltatoken=latest``, a link that starts tracking now, no changes."""
        if link is None:
            query = batching.query_string({"$select": GROUP_DELTA_SELECT, "$deltatoken": "latest"})
            link = f"{self.graph.base_url}/groups/delta?{query}"
        changes = GroupChanges(link="")
        async for page in self._pages(link, delta=True):
            for entry in page.get("value") or []:
                gid = str(entry.get("id") or "") if isinstance(entry, dict) else ""
                if not gid:
                    continue
                if "@removed" in entry:
                    changes.removed_groups.add(gid)
                    changes.members.pop(gid, None)
                    continue
                changes.removed_groups.discard(gid)
                members = changes.members.setdefault(gid, {})
                for member in entry.get("members@delta") or []:
                    if isinstance(member, dict) and member.get("id"):
                        mid = str(member["id"])
                        members.pop(mid, None)
                        members[mid] = "@removed" not in member
            changes.link = page.get("@odata.deltaLink") or changes.link
        return changes

    async def user_changes(self, link: str | None) -> UserChanges:
        """``GET /users/delta?$select=id,accountEnabled`` from ``link`` (every account when
        ``None``) to the next ``@odata.deltaLink``; ``@removed`` users are deleted ones."""
        if link is None:
            link = f"{self.graph.base_url}/users/delta?{batching.query_string({'$select': USER_DELTA_SELECT})}"
        changes = UserChanges(link="")
        async for page in self._pages(link, delta=True):
            for entry in page.get("value") or []:
                uid = str(entry.get("id") or "") if isinstance(entry, dict) else ""
                if not uid:
                    continue
                if "@removed" in entry:
                    changes.removed.add(uid)
                    changes.enabled.pop(uid, None)
                    continue
                changes.removed.discard(uid)
                changes.enabled[sys.intern(uid)] = entry.get("accountEnabled")
            changes.link = page.get("@odata.deltaLink") or changes.link
        return changes

    async def _pages(self, url: str, *, delta: bool = False) -> AsyncIterator[dict[str, Any]]:
        """Each page of a list, as parsed JSON, following ``@odata.nextLink``. A delta round
        must end with a ``@odata.deltaLink``; a 410 (or ``syncStateNotFound``) raises
        :class:`ChangesExpired`."""
        for _ in range(MAX_PAGES):
            page = await self._get_json(url)
            yield page
            next_link = page.get("@odata.nextLink")
            if not next_link:
                if delta and not page.get("@odata.deltaLink"):
                    raise TargetError(Outcome.TRANSIENT, "a delta round ended without @odata.deltaLink")
                return
            url = str(next_link)
        raise TargetError(Outcome.BAD_REQUEST, f"more than {MAX_PAGES} pages: {url}")

    async def _get_json(self, url: str) -> dict[str, Any]:
        """One ``GET`` of an absolute URL through the SDK's request adapter, the body parsed
        here (no SDK model objects); failures become ``TargetError`` (errors.py)."""
        info = RequestInformation(Method.GET)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        try:
            raw = await self.graph.adapter.send_primitive_async(info, "bytes", _ERRORS)
        except errors.remote_error_types() as exc:
            mapped = errors.from_exception(exc)
            if mapped.status_code == 410 or mapped.code == SYNC_STATE_NOT_FOUND:
                raise ChangesExpired(mapped.detail, status_code=mapped.status_code) from exc
            raise mapped.error() from exc
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise TargetError(Outcome.TRANSIENT, f"unreadable page: {exc}") from exc
        if not isinstance(body, dict):
            raise TargetError(Outcome.TRANSIENT, "unreadable page: not a JSON object")
        return body
