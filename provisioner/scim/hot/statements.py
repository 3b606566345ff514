"""The database side of the hot read path (:mod:`provisioner.scim.hot.middleware`): one SQL statement
per request on a connection held for it.

A provisioning client's lookup (``userName eq``, ``externalId eq``, ``id eq``, ``userName sw``,
``GET /Users/{id}``) is answered with a single statement that checks the bearer token and loads
the page of users, each user's manager (HR users) and its groups::

    token ─┬─ page of users (WHERE ... ORDER BY id LIMIT n) ─┬─ manager
           │                                                  └─ memberships ─ groups
           └─ (no token row: the token is unknown or revoked)

so PostgreSQL answers in one round trip, and no ORM object, session or transaction is built.
The statements run on two DB-API connections taken from the engine's pool and held, one for
unique lookups (used in the event loop) and one for ranges (used from a worker thread):
autocommit, so every statement sees what is committed, as a read-only unit of work does; on
PostgreSQL with generic plans, so a statement is planned once (a custom plan of the five-way
join costs more than running it). They are closed when the engine is disposed, and opened
again if it is used afterwards. The conditions, the order and the visibility rule are those of
:mod:`provisioner.scim.repository` and :mod:`provisioner.scim.filters`;
``tests/scim_endpoint/test_hot_path.py`` checks that both paths answer byte for byte the same,
and ``test_plans.py`` that the generic plans use the indexes.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

import orjson
from sqlalchemy import event

from provisioner.db import Database
from provisioner.scim.schemas import Ref
from provisioner.scim.textops import escape_like, prefix_upper_bound, sqlite_lower

log = logging.getLogger(__name__)

_COLUMNS: Final = (
    "id",
    "source",
    "employee_id",
    "external_id",
    "user_name",
    "given_name",
    "family_name",
    "preferred_name",
    "display_name",
    "email",
    "department",
    "title",
    "cost_center",
    "manager_employee_id",
    "employment_type",
    "extra",
    "active",
    "version",
    "created_at",
    "updated_at",
)
_N: Final = len(_COLUMNS)
_RETRY_SECONDS: Final = 1.0
"""After a failure, requests take the ordinary path for this long before reconnecting."""
_RANGE_WAIT: Final = 0.05
"""How long a range lookup waits for its connection before taking the ordinary path."""


class Lookup(Enum):
    """The conditions the hot path serves, each on a unique or range index."""

    id = "id = {p}"
    user_name_eq = "lower(user_name) = lower({p})"
    external_id_eq = "external_id = {p}"
    user_name_sw_sqlite = "lower(user_name) >= {p} AND lower(user_name) < {p}"
    user_name_sw_sqlite_open = "lower(user_name) >= {p}"
    user_name_sw_postgresql = (
        "lower(user_name) ~>=~ {p} AND lower(user_name) ~<~ {p} "
        "AND lower(user_name) LIKE {p} ESCAPE '\\'"
    )


UNIQUE: Final = frozenset({Lookup.id, Lookup.user_name_eq, Lookup.external_id_eq})
"""Lookups of at most one user, run in the event loop; the others run in a worker thread."""


def statement(lookup: Lookup, dialect: str) -> str:
    """The SQL of a lookup (DB-API placeholders of the engine's driver)."""
    p = "?" if dialect == "sqlite" else "%s"
    inner = ", ".join(_COLUMNS)
    outer = ", ".join(f"u.{name}" for name in _COLUMNS)
    condition = lookup.value.format(p=p)
    return (
        f"SELECT t.scopes, {outer}, mg.id, mg.display_name, g.id, g.display_name "
        f"FROM (SELECT scopes FROM api_tokens WHERE token_sha256 = {p} AND revoked_at IS NULL) t "
        f"LEFT JOIN (SELECT {inner} FROM identities WHERE user_name IS NOT NULL AND {condition} "
        f"ORDER BY id LIMIT {p}) u ON 1 = 1 "
        "LEFT JOIN identities mg ON u.source = 'hr' AND mg.employee_id = u.manager_employee_id "
        "AND mg.user_name IS NOT NULL "
        "LEFT JOIN directory_group_members m ON m.identity_id = u.id "
        "LEFT JOIN directory_groups g ON g.id = m.group_id "
        "ORDER BY u.id, g.display_name, g.id"
    )


@dataclass(slots=True)
class IdentityRow:
    """The columns of an identity that a User is rendered from (as :func:`fast.user_dict`
    reads them from an :class:`~provisioner.identities.models.Identity`)."""

    id: str
    source: str
    employee_id: str | None
    external_id: str | None
    user_name: str | None
    given_name: str | None
    family_name: str | None
    preferred_name: str | None
    display_name: str | None
    email: str | None
    department: str | None
    title: str | None
    cost_center: str | None
    manager_employee_id: str | None
    employment_type: str | None
    extra: dict[str, Any]
    active: bool | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Found:
    """A user of the page with its manager and groups (in the repository's order)."""

    identity: IdentityRow
    manager: Ref | None
    groups: list[Ref]


@dataclass(frozen=True, slots=True)
class Result:
    """What one statement found: the token's scopes (None: unknown or revoked) and the users."""

    scopes: frozenset[str] | None
    users: list[Found]


class _Held:
    """A DB-API connection taken from the engine's pool and held (autocommit; PostgreSQL:
    generic plans, so a prepared statement is planned once), with a lock."""

    def __init__(self, engine: Any, dialect: str) -> None:
        self._engine = engine
        self._dialect = dialect
        self.lock = threading.Lock()
        self._conn: Any = None
        self._retry_at = 0.0
        self.ascii_folds: bool | None = None

    def connection(self) -> Any:
        """The connection (call with the lock held); None after a recent failure."""
        if self._conn is None and time.monotonic() >= self._retry_at:
            try:
                fairy = self._engine.raw_connection()
                conn = fairy.driver_connection
                fairy.detach()  # held for good: the pool neither counts nor resets it
                if self._dialect == "postgresql":
                    conn.rollback()  # the pool's pre-ping may have opened a transaction
                    conn.autocommit = True
                    # Session-wide, on this connection only: each statement it prepares has
                    # a generic plan that uses its index (see Lookup), planned once.
                    conn.execute("SET plan_cache_mode = force_generic_plan")
                    self.ascii_folds = _folds_ascii(conn)
                self._conn = conn
            except Exception:
                log.warning("scim hot path: no connection", exc_info=True)
                self._retry_at = time.monotonic() + _RETRY_SECONDS
                return None
        return self._conn

    def failed(self) -> None:
        """Drop the connection after an error; requests take the ordinary path for a while."""
        log.warning("scim hot path: the read failed; reconnecting", exc_info=True)
        self.discard()
        self._retry_at = time.monotonic() + _RETRY_SECONDS

    def discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                log.debug("scim hot path: closing the connection failed", exc_info=True)


class HotReader:
    """The held connections of a :class:`~provisioner.db.Database` and its statements: one
    for unique lookups, used in the event loop, one for ranges, used from a worker thread."""

    def __init__(self, db: Database) -> None:
        self.dialect = db.dialect
        self._statements = {lookup: statement(lookup, self.dialect) for lookup in Lookup}
        self._unique = _Held(db.engine, self.dialect)
        self._ranges = _Held(db.engine, self.dialect)
        event.listen(db.engine, "engine_disposed", self._on_dispose)

    def starts_with(self, text: str) -> tuple[Lookup, tuple[str, ...]] | None:
        """The lookup and values of ``userName sw text``, matching what
        :mod:`provisioner.scim.filters` compiles (``lower(userName)`` starts with
        ``lower(text)``); None when only the ordinary path can run it.

        SQLite: a code-point range on ``ix_identities_user_name_lower``. PostgreSQL: the
        prefix as a byte-order range (``~>=~``, ``~<~``, the operators of
        ``ix_identities_user_name_lower_pattern``, which a generic plan uses with parameters;
        a bare ``LIKE $1`` would walk the primary key) plus the LIKE itself; only for an ASCII
        prefix on a database whose ``lower()`` folds ASCII as Python does.
        """
        if self.dialect == "sqlite":
            low = sqlite_lower(text)
            high = prefix_upper_bound(low)
            if high is None:
                return Lookup.user_name_sw_sqlite_open, (low,)
            return Lookup.user_name_sw_sqlite, (low, high)
        if not text.isascii() or self._ranges.ascii_folds is False:
            return None
        low = text.lower()
        high = prefix_upper_bound(low)
        if high is None:
            return None
        return Lookup.user_name_sw_postgresql, (low, high, escape_like(low) + "%")

    def read(
        self, digest: str, lookup: Lookup, values: Sequence[str], limit: int
    ) -> Result | None:
        """Run one lookup: a unique one in the caller's thread (the event loop) and never
        waiting for the connection, a range one (from a worker thread) waiting briefly.
        None when it cannot run now (busy, failed, or a PostgreSQL that folds ASCII
        differently): the caller then takes the ordinary path."""
        held = self._unique if lookup in UNIQUE else self._ranges
        if lookup in UNIQUE:
            acquired = held.lock.acquire(blocking=False)
        else:
            acquired = held.lock.acquire(timeout=_RANGE_WAIT)
        if not acquired:
            return None
        try:
            conn = held.connection()
            if conn is None or (lookup is Lookup.user_name_sw_postgresql and not held.ascii_folds):
                return None
            try:
                rows = self._execute(conn, lookup, (digest, *values, limit))
            except Exception:
                held.failed()
                return None
            return self._result(rows)
        finally:
            held.lock.release()

    def _execute(self, conn: Any, lookup: Lookup, params: tuple[Any, ...]) -> list[Any]:
        cursor = conn.cursor()
        try:
            if self.dialect == "postgresql":
                cursor.execute(self._statements[lookup], params, prepare=True)
            else:
                cursor.execute(self._statements[lookup], params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    # -- rows --------------------------------------------------------------------------------

    def _result(self, rows: list[Any]) -> Result:
        if not rows:
            return Result(None, [])
        scopes = frozenset((rows[0][0] or "").split())
        users: list[Found] = []
        current: Found | None = None
        sqlite = self.dialect == "sqlite"
        for row in rows:
            values = row[1 : 1 + _N]
            if values[0] is None:
                continue  # the token row without users
            if current is None or current.identity.id != values[0]:
                manager_id, manager_display = row[1 + _N], row[2 + _N]
                manager = Ref(manager_id, manager_display) if manager_id is not None else None
                current = Found(_identity(values, sqlite), manager, [])
                users.append(current)
            group_id, group_display = row[3 + _N], row[4 + _N]
            if group_id is not None:
                current.groups.append(Ref(group_id, group_display))
        return Result(scopes, users)

    def _on_dispose(self, _engine: Any) -> None:
        # As the pool does: close now (a scratch database can then be dropped), and connect
        # again if the engine is used afterwards.
        for held in (self._unique, self._ranges):
            with held.lock:
                held.discard()


def _folds_ascii(conn: Any) -> bool:
    upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT lower(%s::text)", (upper,), prepare=False)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return row is not None and row[0] == upper.lower()


def _identity(values: Sequence[Any], sqlite: bool) -> IdentityRow:
    row = IdentityRow(*values)
    if sqlite:  # what the ORM's column types do on SQLite
        row.extra = orjson.loads(row.extra) if row.extra is not None else {}
        row.active = None if row.active is None else bool(row.active)
        row.created_at = _sqlite_datetime(row.created_at)
        row.updated_at = _sqlite_datetime(row.updated_at)
    else:
        if isinstance(row.extra, str | bytes):
            row.extra = orjson.loads(row.extra)
        row.extra = row.extra if row.extra is not None else {}
        row.created_at = row.created_at.astimezone(UTC)
        row.updated_at = row.updated_at.astimezone(UTC)
    return row


def _sqlite_datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_readers: weakref.WeakKeyDictionary[Database, HotReader] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def reader_of(db: Database) -> HotReader:
    """The hot reader of a database (one per :class:`~provisioner.db.Database`)."""
    reader = _readers.get(db)
    if reader is None:
        with _readers_lock:
            reader = _readers.get(db)
            if reader is None:
                reader = _readers[db] = HotReader(db)
    return reader

