"""The generic read-model machinery: tables, projection stores and keyset pages.

Each projection owns its tables and one row in `projection_tracking`. Rebuilding writes into
`<table>__rebuild` copies, then swaps them in, in one transaction that holds the live
tracking row, so readers see the old tables until the new ones replace them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog

from application.projections import ProjectionStore, Tracked
from domain.shared import ValidationError
from infrastructure.sql import Database, Session

W = TypeVar("W")
T = TypeVar("T")
log = structlog.get_logger(__name__)

SHADOW = "__rebuild"
SCHEMAS_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_schemas ("
    " name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)"
)
TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    " name TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL)"
)


@dataclass(frozen=True)
class Table:
    """A read-model table: its logical name, columns and indexes (name suffix → columns).

    `partial_indexes` (name suffix, columns, predicate) hold only the rows a query needs; a
    query uses one only if its WHERE repeats the predicate word for word, as SQL text.
    `revision` goes up when what the projection writes into unchanged columns changes, so
    existing tables are rebuilt from the log as when their definition changes.
    """

    name: str
    columns: str
    indexes: tuple[tuple[str, str], ...] = ()
    partial_indexes: tuple[tuple[str, str, str], ...] = ()
    revision: int = field(default=0, repr=False)

    def index_names(self) -> list[str]:
        return [name for name, *_ in (*self.indexes, *self.partial_indexes)]


def create_tracking(db: Database) -> None:
    with db.transaction() as s:
        s.execute(TRACKING_DDL)


def _create_tables(session: Session, tables: Sequence[Table], suffix: str) -> None:
    for table in tables:
        name = table.name + suffix
        session.execute(f"CREATE TABLE IF NOT EXISTS {name} ({table.columns})")
        for index, columns in table.indexes:
            session.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_{index} ON {name} ({columns})")
        for index, columns, predicate in table.partial_indexes:
            session.execute(
                f"CREATE INDEX IF NOT EXISTS ix_{name}_{index} ON {name} ({columns})"
                f" WHERE {predicate}"
            )


def tracking_position(session: Session, name: str, *, lock: bool) -> int:
    clause = session.lock_row_clause() if lock else ""
    row = session.fetchone(
        f"SELECT position FROM projection_tracking WHERE name = ? {clause}", (name,)
    )
    if row is None and not lock:
        return 0  # readers never write: a missing row means nothing was projected yet
    if row is None:
        session.execute(
            "INSERT INTO projection_tracking (name, position, updated_at) VALUES (?, 0, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, datetime.now(UTC)),
        )
        row = session.fetchone(
            f"SELECT position FROM projection_tracking WHERE name = ? {clause}", (name,)
        )
        return int(row["position"]) if row else 0
    return int(row["position"])


class _Tracked(Generic[W]):
    def __init__(self, session: Session, name: str, writer: W) -> None:
        self._session = session
        self._name = name
        self._writer = writer
        self._position = tracking_position(session, name, lock=True)

    @property
    def position(self) -> int:
        return self._position

    @property
    def writer(self) -> W:
        return self._writer

    def advance(self, position: int) -> None:
        if position < self._position:
            raise ValueError(f"projection {self._name} cannot move back to {position}")
        self._session.execute(
            "UPDATE projection_tracking SET position = ?, updated_at = ? WHERE name = ?",
            (position, datetime.now(UTC), self._name),
        )
        self._position = position


class SqlProjectionStore(Generic[W]):
    """A projection's tables and tracking row; `make_writer` binds a writer to a session."""

    def __init__(
        self,
        db: Database,
        name: str,
        tables: Sequence[Table],
        make_writer: Callable[[Session, Callable[[str], str]], W],
        *,
        suffix: str = "",
    ) -> None:
        self._db = db
        self._name = name
        self._tables = tuple(tables)
        self._make_writer = make_writer
        self._suffix = suffix

    @property
    def name(self) -> str:
        return self._name + self._suffix

    def _table(self, logical: str) -> str:
        return logical + self._suffix

    def create(self) -> None:
        """Create the tables; if their definition changed since they were created, drop them
        and reset the tracking position, so the projector rebuilds them from the log."""
        # Revision 0 is left out, so tables that never had one keep their fingerprint.
        revisions = "".join(f";{t.name}@{t.revision}" for t in self._tables if t.revision)
        fingerprint = hashlib.sha256((repr(self._tables) + revisions).encode()).hexdigest()
        with self._db.transaction() as s:
            s.execute(TRACKING_DDL)
            s.execute(SCHEMAS_DDL)
            row = s.fetchone(
                "SELECT fingerprint FROM projection_schemas WHERE name = ?", (self.name,)
            )
            if row is not None and row["fingerprint"] != fingerprint:
                log.warning("read model definition changed, rebuilding it", projection=self.name)
                for table in self._tables:
                    s.execute(f"DROP TABLE IF EXISTS {table.name}{self._suffix}")
                s.execute("DELETE FROM projection_tracking WHERE name = ?", (self.name,))
            _create_tables(s, self._tables, self._suffix)
            s.execute(
                "INSERT INTO projection_schemas (name, fingerprint) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint",
                (self.name, fingerprint),
            )

    def _tracked(self, session: Session) -> _Tracked[W]:
        return _Tracked(session, self.name, self._make_writer(session, self._table))

    @contextmanager
    def transaction(self) -> Iterator[Tracked[W]]:
        with self._db.transaction() as s:
            yield self._tracked(s)

    def position(self) -> int:
        with self._db.read() as s:
            return tracking_position(s, self.name, lock=False)

    def shadow(self) -> SqlProjectionStore[W]:
        shadow = SqlProjectionStore(
            self._db, self._name, self._tables, self._make_writer, suffix=SHADOW
        )
        with self._db.transaction() as s:
            for table in self._tables:
                s.execute(f"DROP TABLE IF EXISTS {table.name}{SHADOW}")
            s.execute("DELETE FROM projection_tracking WHERE name = ?", (shadow.name,))
            _create_tables(s, self._tables, SHADOW)
        return shadow

    def replace_with(
        self, shadow: ProjectionStore[W], finish: Callable[[Tracked[W]], None]
    ) -> None:
        if not isinstance(shadow, SqlProjectionStore) or shadow._suffix != SHADOW:  # noqa: SLF001
            raise TypeError("replace_with takes this store's own shadow")
        with self._db.transaction() as s:
            # Holding the live tracking row stops the live runner until the swap commits.
            tracking_position(s, self.name, lock=True)
            tracked = shadow._tracked(s)  # noqa: SLF001
            finish(tracked)
            for table in self._tables:
                s.execute(f"DROP TABLE IF EXISTS {table.name}")
                if s.dialect == "sqlite":
                    for index in table.index_names():
                        s.execute(f"DROP INDEX IF EXISTS ix_{table.name}{SHADOW}_{index}")
                s.execute(f"ALTER TABLE {table.name}{SHADOW} RENAME TO {table.name}")
                if s.dialect == "postgres":
                    self._rename_postgres_indexes(s, table.name)
                else:
                    _create_tables(s, [table], "")
            s.execute(
                "UPDATE projection_tracking SET position = ?, updated_at = ? WHERE name = ?",
                (tracked.position, datetime.now(UTC), self.name),
            )
            s.execute("DELETE FROM projection_tracking WHERE name = ?", (shadow.name,))

    @staticmethod
    def _rename_postgres_indexes(s: Session, table: str) -> None:
        # Index names are global in a schema: give the shadow's indexes (primary key
        # included) their live names, or the next rebuild could not create its own.
        rows = s.fetchall(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = ?",
            (table,),
        )
        for row in rows:
            old = row["indexname"]
            if SHADOW in old:
                s.execute(f'ALTER INDEX "{old}" RENAME TO "{old.replace(SHADOW, "")}"')


class TrackingOnlyStore(Generic[W]):
    """A projection store with no tables, for reactions such as the outbox relay."""

    def __init__(self, db: Database, name: str, writer: W) -> None:
        self._db = db
        self._name = name
        self._writer = writer

    @property
    def name(self) -> str:
        return self._name

    def create(self) -> None:
        create_tracking(self._db)

    @contextmanager
    def transaction(self) -> Iterator[Tracked[W]]:
        with self._db.transaction() as s:
            yield _Tracked(s, self._name, self._writer)

    def position(self) -> int:
        with self._db.read() as s:
            return tracking_position(s, self._name, lock=False)

    def shadow(self) -> ProjectionStore[W]:
        raise ValidationError(f"{self._name} has no read model to rebuild")

    def replace_with(
        self,
        shadow: ProjectionStore[W],  # noqa: ARG002 - nothing to replace
        finish: Callable[[Tracked[W]], None],  # noqa: ARG002
    ) -> None:
        raise ValidationError(f"{self._name} has no read model to rebuild")


def encode_cursor(seq: int) -> str:
    return f"s{seq}"


def decode_cursor(cursor: str) -> int:
    digits = cursor[1:]
    # isascii: str.isdigit() also holds for digits such as '²', which int() refuses.
    number = digits.isascii() and digits.isdigit()
    if not cursor.startswith("s") or not number or len(digits) > 18:
        raise ValidationError(f"invalid cursor {cursor!r}", field="cursor")
    return int(digits)


def newest_first(
    db: Database,
    select: str,
    where: Sequence[str],
    params: Sequence[Any],
    *,
    limit: int,
    cursor: str | None,
    convert: Callable[[dict[str, Any]], T],
    oldest_first: bool = False,
) -> tuple[list[T], str | None]:
    """One page of a list newest first (or oldest first), by keyset on the table's `seq`.

    `select` is `SELECT <columns> FROM <table>`, `where` its conditions (ANDed); `cursor`
    is the one the previous page returned. The next cursor is None on the last page.
    """
    clauses = list(where)
    values = list(params)
    if cursor is not None:
        clauses.append("seq > ?" if oldest_first else "seq < ?")
        values.append(decode_cursor(cursor))
    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "ASC" if oldest_first else "DESC"
    with db.read() as s:
        rows = s.fetchall(f"{select}{condition} ORDER BY seq {order} LIMIT ?", [*values, limit + 1])
    more = len(rows) > limit > 0
    return [convert(row) for row in rows[:limit]], (
        encode_cursor(int(rows[limit - 1]["seq"])) if more else None
    )
