"""Changes for servers without PATCH: read the resource, change it, PUT it back
(RFC 7644 §3.5.1), with ``If-Match`` when the server offers ETags (§3.14) so a change made
in between is never overwritten; a 412 reads again, a few times, then the queue retries.
Each change comes back with the body the server answered (or the one it read, when nothing
was to change) for :mod:`verify` to confirm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from provisioner.targets.contract import OpResult, Outcome
from provisioner.targets.scim import errors, mapping
from provisioner.targets.scim.writes import FallbackWrite, seg

if TYPE_CHECKING:
    from provisioner.targets.scim.connector import ScimConnector

ATTEMPTS = 3


class FallbackUpdates:
    def __init__(self, connector: ScimConnector) -> None:
        self.connector = connector

    async def _put(self, path: str, change: Any, n_ops: int) -> tuple[errors.Answer, Any]:
        """GET, apply ``change(body) -> body | None`` (None: nothing to do), PUT; the answer and
        the resource it carries (the one read, when nothing was to change)."""
        conn = self.connector
        caps = await conn.capabilities()
        answer = errors.Answer(Outcome.TRANSIENT, None, "not attempted")
        for _ in range(ATTEMPTS):
            reply = await conn.send("GET", path)
            answer = errors.answer_of(reply)
            if answer.outcome != Outcome.DONE:
                return answer, None
            current = reply.body if isinstance(reply.body, dict) else {}
            body = change(current)
            if body is None:
                return errors.Answer(Outcome.DONE, reply.status, "already so"), current
            headers = {}
            version = (current.get("meta") or {}).get("version") or reply.headers.get("ETag")
            if caps.etag and version:
                headers["If-Match"] = version
            reply = await conn.send("PUT", path, json=body, headers=headers, writes_=n_ops)
            answer = errors.answer_of(reply)
            if reply.status != 412:
                return answer, reply.body
        return answer, None

    async def put_user(self, write: FallbackWrite) -> tuple[OpResult, Any]:
        op = write.op
        conn = self.connector

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            if write.update and op.account is not None:
                return mapping.replacement_body(conn.mapping, op.account, current, active=write.active)
            if current.get("active") == write.active:
                return None
            return mapping.replacement_body(conn.mapping, None, current, active=write.active)

        try:
            answer, body = await self._put(f"Users/{seg(op.account_id or '')}", change, 1)
        except (ValidationError, ValueError) as exc:  # refused by scim2-models before sending
            return OpResult(op.op_id, Outcome.BAD_REQUEST, detail=f"not a valid SCIM value: {str(exc)[:300]}"), None
        return errors.result_of(op.op_id, answer), body

    async def put_group(self, group_id: str, members: list[tuple[int, str, str]]) -> tuple[list[OpResult], Any]:
        """Membership changes for a server that takes no PATCH on groups: the whole member
        list is PUT (RFC 7644 §3.5.1 replaces ``members`` as a whole)."""

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            have = [m for m in current.get("members") or [] if isinstance(m, dict) and m.get("value")]
            ids = [str(m["value"]) for m in have]
            new = list(ids)
            for _, action, uid in members:
                if action == "add" and uid not in new:
                    new.append(uid)
                elif action == "remove" and uid in new:
                    new.remove(uid)
            if new == ids:
                return None
            body = {k: v for k, v in current.items() if k not in ("meta",)}
            body["members"] = [{"value": uid} for uid in new]
            return body

        answer, body = await self._put(f"Groups/{seg(group_id)}", change, len(members))
        return [errors.result_of(op_id, answer) for op_id, _, _ in members], body
