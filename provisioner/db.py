"""Engine, sessions and the declarative base shared by every domain's models.

SQLite is the embedded default (WAL, one writer at a time); PostgreSQL is the scale-out path.
Commits happen at the boundary (the HTTP request or the job), never inside a service.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from provisioner import jsonutil

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_serializer=jsonutil.dumps, json_deserializer=jsonutil.loads)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # SQLite: take the write lock at BEGIN so concurrent writers queue instead of failing
        # with "database is locked" when a read transaction tries to upgrade.
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:  # pragma: no cover - trivial
            # Read-only units of work (Database.read) begin deferred and run side by side.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                         json_serializer=jsonutil.dumps, json_deserializer=jsonutil.loads)


class _NoLock:
    """PostgreSQL needs no process-side writer lock."""

    def acquire(self, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        pass


class NamedLock:
    """A lock every process sharing the database sees, by name (:meth:`Database.named_lock`).

    PostgreSQL: a session advisory lock (``pg_try_advisory_lock``, polled, so no transaction
    stays open while waiting) held by a pooled connection of its own until :meth:`release`.
    SQLite: ``flock`` on a file beside the database file (``<file>.lock-<name hash>``), which
    other processes and other :class:`Database` objects of the file honour alike.
    """

    _POLL = 0.05

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine, self._name = engine, name
        self._conn: Any = None
        self._file: Any = None

    def acquire(self, timeout: float) -> bool:
        """Take the lock within ``timeout`` seconds; False if another holder kept it."""
        deadline = time.monotonic() + timeout
        if self._engine.dialect.name == "sqlite":
            return self._acquire_file(deadline)
        conn = self._engine.connect()
        try:
            while True:
                got = conn.execute(_TRY_LOCK, {"name": self._name}).scalar()
                conn.commit()
                if got:
                    self._conn = conn
                    return True
                if time.monotonic() >= deadline:
                    conn.close()
                    return False
                time.sleep(self._POLL)
        except BaseException:
            conn.invalidate()  # the session (and any lock it took) ends with the connection
            conn.close()
            raise

    def _acquire_file(self, deadline: float) -> bool:
        database = self._engine.url.database
        if not database or database == ":memory:":
            raise RuntimeError("a named lock needs a database file (not an in-memory SQLite)")
        digest = hashlib.sha256(self._name.encode()).hexdigest()[:16]
        handle = open(f"{database}.lock-{digest}", "a+b")  # noqa: SIM115 - held until release()
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.close()
                        return False
                    time.sleep(self._POLL)
                    continue
                self._file = handle
                return True
        except BaseException:
            handle.close()
            raise

    def release(self) -> None:
        if self._file is not None:
            handle, self._file = self._file, None
            handle.close()  # closing the file drops its flock
            return
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(_UNLOCK, {"name": self._name})
            conn.commit()
        except BaseException:
            conn.invalidate()  # never hand a connection that may still hold the lock back to the pool
            raise
        finally:
            conn.close()


_TRY_LOCK = text("SELECT pg_try_advisory_lock(hashtextextended(:name, 0))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended(:name, 0))")


class WriteSlotTimeout(RuntimeError):
    """SQLite: no write slot (this process's writer lock) within ``Database.write_slot_seconds``.

    Usually load (many loops of one process queueing for the single writer), rarely a
    transaction opened inside another; callers with finished work to store retry (the worker's
    recording of a round does, see ``provisioner.queue.recording``)."""


def is_transient(exc: BaseException) -> bool:
    """The database was unavailable or busy (a lost connection, a lock or a write slot not
    given in time, a deadlock or serialization failure): the same work may well succeed if
    tried again. Anything else (a value the database refuses, a bug) will fail again."""
    if isinstance(exc, WriteSlotTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError))


class Database:
    """An engine and its session factory; one per process."""

    #: How long a transaction waits for this process's SQLite write slot before giving up.
    write_slot_seconds: float = 60.0

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine.execution_options(read_only=True),
                                           expire_on_commit=False)
        # SQLite has one writer at a time: queue this process's transactions on a lock instead
        # of letting them spin in SQLite's busy handler (which sleeps in growing steps).
        self._writer = threading.Lock() if is_sqlite(url) else _NoLock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def _write_slot(self) -> Iterator[None]:
        if not self._writer.acquire(timeout=self.write_slot_seconds):
            raise WriteSlotTimeout(f"no SQLite write slot within {self.write_slot_seconds:g} s: the process's "
                                   "other transactions held it (load), or a transaction is nested in another")
        try:
            yield
        finally:
            self._writer.release()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        with self._write_slot(), self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: on SQLite a deferred transaction that takes no write slot,
        so reads run in parallel with each other and with the writer (WAL)."""
        # Closing ends the transaction without expiring what was loaded (a rollback would),
        # so rows read here stay usable afterwards, as after a commit.
        with self._read_sessions() as session:
            yield session

    @contextmanager
    def scratch(self) -> Iterator[Session]:
        """A transaction that is always rolled back (previews: "what would happen if")."""
        with self._write_slot(), self.sessions() as session:
            try:
                yield session
            finally:
                session.rollback()

    def named_lock(self, name: str) -> NamedLock:
        """A lock all processes on this database share (see :class:`NamedLock`)."""
        return NamedLock(self.engine, name)

    def dispose(self) -> None:
        self.engine.dispose()


_AFTER_COMMIT = "provisioner.after_commit"  # Session.info key: callbacks waiting for the commit


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Call ``fn`` once this session's transaction has committed, never if it rolls back (a
    worker woken for work a transaction makes ready must find it committed)."""
    if _AFTER_COMMIT not in session.info:
        event.listen(session, "after_commit", _run_after_commit)
        event.listen(session, "after_transaction_end", _forget_after_commit)
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


def _run_after_commit(session: Session) -> None:
    if session.get_nested_transaction() is None:  # the outermost commit, not a savepoint's release
        waiting, session.info[_AFTER_COMMIT] = session.info.get(_AFTER_COMMIT, []), []
        for fn in waiting:
            fn()


def _forget_after_commit(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # rolled back (after a commit the list is empty already)
        session.info[_AFTER_COMMIT] = []


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert many rows fast, in the session's transaction.

    PostgreSQL: ``COPY ... FROM STDIN`` (psycopg would otherwise pipeline one INSERT per row).
    SQLite: one executemany of a cached INSERT.
    """
    if not rows:
        return
    conn = session.connection()
    table = model.__table__
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    is_json = [isinstance(table.c[name].type, JSON) for name in columns]
    cursor = conn.connection.driver_connection.cursor()
    names = ", ".join(f'"{name}"' for name in columns)
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([jsonutil.dumps(row[c]) if j and row[c] is not None else row[c]
                            for c, j in zip(columns, is_json, strict=True)])


def reserve_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """``count`` new values of ``model``'s integer ``id``, so that rows which refer to each other
    are inserted in bulk (``insert_rows``) without reading ids back row by row.

    PostgreSQL: drawn from the column's sequence in one statement. SQLite: after the largest id
    (a write transaction holds SQLite's one write lock, so nobody else takes them meanwhile).
    """
    if count <= 0:
        return []
    table = model.__table__
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return list(conn.execute(text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                                      "FROM generate_series(1, :n)"), {"n": count}).scalars())
    session.flush()  # rows still pending in the session take their ids first
    top = conn.execute(text(f'SELECT coalesce(max(id), 0) FROM "{table.name}"')).scalar_one()
    return list(range(top + 1, top + 1 + count))
