"""One ``apply`` call: send each operation in its form, confirm the effect, climb the ladder.

Round by round: the operations are planned in the form :mod:`forms` names for them (PATCH,
Bulk, or GET + PUT), sent, and each answer is confirmed (:mod:`verify`). An operation whose
form the app refused, or answered 2xx without the effect, is learned (that operation only, never
the whole target) and sent again in the next form in the same call; when no form is left it
gets a permanent outcome whose detail says what the app did with each. Deletions go last, after
the memberships they would orphan. The connector never decides about outcomes: the queue does.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisioner.targets.contract import OpKind, OpResult, Outcome, TargetError, TargetOp
from provisioner.targets.scim import forms as forms_mod
from provisioner.targets.scim import verify, writes
from provisioner.targets.scim.capabilities import Capabilities
from provisioner.targets.scim.forms import DESCRIBE, is_form_refusal, operation_of
from provisioner.targets.scim.writes import Call

if TYPE_CHECKING:
    from provisioner.targets.scim.connector import ScimConnector

MAX_ROUNDS = 1 + max(len(ladder) for ladder in forms_mod.LADDERS.values())


@dataclass(slots=True)
class Attempt:
    """One operation sent in one form, and what confirms it."""

    op: TargetOp
    operation: str
    form: str
    body: Any  # the resource the answer carried, if any
    group_id: str | None = None
    action: str | None = None  # add | remove (memberships)
    user_id: str | None = None


class LadderRun:
    def __init__(self, conn: ScimConnector, caps: Capabilities) -> None:
        self.conn, self.caps = conn, caps
        self.forms = conn.forms
        self.results: dict[int, OpResult] = {}
        self.history: dict[int, list[str]] = defaultdict(list)
        self.override: dict[int, str] = {}
        self.second_look: set[int] = set()  # operations sent again in the same form after a miss

    def form_of(self, op: TargetOp) -> str:
        operation = operation_of(op.kind)
        if operation is None:
            return "patch"  # not laddered (create, delete)
        return self.override.get(op.op_id) or self.forms.form(operation, self.caps)

    async def apply(self, ops: Sequence[TargetOp]) -> list[OpResult]:
        pending = list({op.op_id: op for op in ops}.values())
        last: list[Call] = []
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            plan = writes.plan_writes(self.conn.config, self.caps, pending, self.conn.mapping, self.form_of)
            self.results.update({r.op_id: r for r in plan.results})
            last += [c for c in plan.calls if c.last]
            calls = await self._send_refined([c for c in plan.calls if not c.last])
            attempts = self._attempts_of(calls, {op.op_id: op for op in pending})
            attempts += await self._puts(plan)
            pending = await self._confirm(attempts)
        if last:
            await self._send(last)
        for op in ops:
            self.results.setdefault(op.op_id, OpResult(op.op_id, Outcome.TRANSIENT, detail="no answer recorded"))
        return [self.results[op_id] for op_id in dict.fromkeys(op.op_id for op in ops)]

    # ---- sending ----------------------------------------------------------------------------

    async def _send(self, calls: list[Call]) -> None:
        if not calls:
            return
        if self.caps.bulk:
            await self.conn._send_bulk(calls, self.caps, self.results)
        else:
            await asyncio.gather(*(self.conn._send_one(c, self.results) for c in calls))

    async def _send_refined(self, calls: list[Call]) -> list[Call]:
        """Send; a group PATCH mixing forms that is refused is split by form (to learn which one
        the app refuses); a multi-member PATCH failing for another reason (one bad member fails
        it all) goes member by member, so every operation gets its own outcome."""
        await self._send(calls)
        out: list[Call] = []
        again: list[Call] = []
        for call in calls:
            result = self.results.get(call.op_ids[0])
            if call.purpose != "group" or result is None or result.outcome == Outcome.DONE or len(call.members) < 2:
                out.append(call)
                continue
            refused = is_form_refusal(result.status_code, None, result.detail)
            keys = {self._key(call, m) for m in call.members}
            if refused and len(keys) > 1:
                for key in keys:
                    part = [m for m in call.members if self._key(call, m) == key]
                    again.append(writes.group_call(self.conn.config, call.group_id or "", part,
                                                   {m[0]: call.forms[m[0]] for m in part}))
            elif not refused and result.outcome in (Outcome.BAD_REQUEST, Outcome.NOT_FOUND):
                again += [writes.group_call(self.conn.config, call.group_id or "", [m], {m[0]: call.forms[m[0]]})
                          for m in call.members]
            else:
                out.append(call)
        if again:
            await self._send(again)
        return out + again

    @staticmethod
    def _key(call: Call, member: tuple[int, str, str]) -> tuple[str, str]:
        return member[1], call.forms.get(member[0], "")

    def _attempts_of(self, calls: list[Call], ops: dict[int, TargetOp]) -> list[Attempt]:
        attempts: list[Attempt] = []
        for call in calls:
            for op_id in call.op_ids:
                op = ops.get(op_id)
                operation = operation_of(op.kind) if op is not None else None
                if op is None or operation is None:
                    continue
                attempt = Attempt(op, operation, call.forms.get(op_id, "patch"), call.reply)
                if call.purpose == "group":
                    _, action, uid = next(m for m in call.members if m[0] == op_id)
                    attempt.group_id, attempt.action, attempt.user_id = call.group_id, action, uid
                attempts.append(attempt)
        return attempts

    async def _puts(self, plan: writes.WritePlan) -> list[Attempt]:
        """GET + PUT for the operations whose form is ``put``."""
        updates = self.conn.updates
        user_jobs = [updates.put_user(w) for w in plan.user_puts]
        group_jobs = [updates.put_group(g, m) for g, m in plan.group_puts.items()]
        done = await asyncio.gather(*user_jobs, *group_jobs)
        attempts: list[Attempt] = []
        for write, (result, body) in zip(plan.user_puts, done[:len(user_jobs)], strict=True):
            self.results[result.op_id] = result
            operation = operation_of(write.op.kind)
            if operation is not None:
                attempts.append(Attempt(write.op, operation, forms_mod.PUT, body))
        by_id = {w.op.op_id: w.op for w in plan.user_puts}
        for (group_id, members), (results, body) in zip(plan.group_puts.items(), done[len(user_jobs):], strict=True):
            self.results.update({r.op_id: r for r in results})
            for op_id, action, uid in members:
                op = by_id.get(op_id) or TargetOp(op_id, OpKind.ADD_MEMBER if action == "add" else OpKind.REMOVE_MEMBER,
                                                  account_id=uid, group_id=group_id)
                attempts.append(Attempt(op, forms_mod.MEMBER_ADD if action == "add" else forms_mod.MEMBER_REMOVE,
                                        forms_mod.PUT, body, group_id, action, uid))
        return attempts

    # ---- confirming -------------------------------------------------------------------------

    async def _confirm(self, attempts: list[Attempt]) -> list[TargetOp]:
        """Confirm each answered write; the operations to send again in their next form."""
        groups_to_read: set[str] = set()
        users_to_read: set[str] = set()
        verdict: dict[int, str | None] = {}  # op id -> what is missing ("" when confirmed)
        for a in attempts:
            result = self.results.get(a.op.op_id)
            if result is None or result.outcome != Outcome.DONE:
                continue
            missing = self._missing(a, a.body)
            if missing is None:
                (groups_to_read if a.group_id else users_to_read).add(a.group_id or a.op.account_id or "")
            else:
                verdict[a.op.op_id] = missing
        read_groups = await self._read_all(groups_to_read, verify.read_group)
        read_users = await self._read_all(users_to_read, verify.read_user)
        again: list[TargetOp] = []
        for a in attempts:
            op_id = a.op.op_id
            result = self.results.get(op_id)
            if result is None:
                continue
            status = result.status_code
            what = f"{DESCRIBE[(a.operation, a.form)]} answered {status if status is not None else 'nothing'}"
            if result.outcome == Outcome.DONE:
                missing = verdict.get(op_id)
                if missing is None:
                    source = read_groups.get(a.group_id or "") if a.group_id else read_users.get(a.op.account_id or "")
                    if isinstance(source, TargetError):
                        self.results[op_id] = OpResult(op_id, Outcome.STOP if source.outcome == Outcome.STOP
                                                       else Outcome.TRANSIENT, status_code=status,
                                                       detail=f"{what}; could not read it back to confirm: {source.detail}")
                        continue
                    missing = self._missing(a, source, read=True) or ""
                if not missing:
                    continue
                if op_id not in self.second_look and (a.operation, a.form) not in self.forms.refused:
                    # Once more in the same form before learning: a change made in between by
                    # someone else (a lost update on the app's side) looks the same as a form
                    # the app ignores, and must not downgrade the operation for good.
                    self.second_look.add(op_id)
                    self.override[op_id] = a.form
                    again.append(a.op)
                    continue
                reason = f"{what} but {missing}"
            elif is_form_refusal(status, None, result.detail) or (
                    status == 400 and (a.operation, a.form) == (forms_mod.MEMBER_REMOVE, forms_mod.VALUE_LIST)):
                # (Entra ID's value-list removal is not RFC 7644 §3.5.2.2: a 400 is about the form.)
                reason = f"{what}" + (f" ({result.detail})" if result.detail else "")
            else:
                continue  # transient, not found, a bad value...: the queue decides
            nxt = await self._learn(a, reason)
            if nxt is None:
                self.results[op_id] = OpResult(op_id, Outcome.BAD_REQUEST, status_code=status,
                                               detail="no form works for this app: " + "; ".join(self.history[op_id]))
            else:
                self.override[op_id] = nxt
                again.append(a.op)
        return list({op.op_id: op for op in again}.values())

    def _missing(self, a: Attempt, body: Any, *, read: bool = False) -> str | None:
        """What of the attempt's effect the resource does not show ("" when all of it),
        or None when the body cannot tell (then it is read)."""
        if a.group_id:
            members = verify.group_members_read(body) if read else verify.member_ids(body)
            if members is None:
                return None
            if verify.member_effect(members, a.action or "", a.user_id or ""):
                return ""
            return "the member is still listed" if a.action == "remove" else "the member is not listed"
        active = None
        if a.op.kind in (OpKind.ENABLE_ACCOUNT, OpKind.DISABLE_ACCOUNT):
            active = a.op.kind == OpKind.ENABLE_ACCOUNT
        spec = a.op.account if a.op.kind == OpKind.UPDATE_ACCOUNT else None
        missing = verify.user_missing(body if body else None, self.conn.mapping, spec, active)
        if missing is None:
            return "the user could not be read back" if read else None
        if not missing:
            return ""
        if missing == ["active"]:
            return f"active is not {str(active).lower()}"
        return f"{', '.join(missing)} unchanged"

    async def _read_all(self, keys: set[str], read: Any) -> dict[str, Any]:
        async def one(key: str) -> tuple[str, Any]:
            try:
                return key, await read(self.conn, key)
            except TargetError as exc:
                return key, exc
        return dict(await asyncio.gather(*(one(k) for k in keys if k)))

    async def _learn(self, a: Attempt, reason: str) -> str | None:
        self.history[a.op.op_id].append(reason)
        lesson = self.forms.learn(a.operation, a.form, reason)
        if lesson is not None:
            await self.conn.report_learned(lesson)
        return self.forms.after(a.operation, a.form, self.caps)
