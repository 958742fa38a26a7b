"""A small SQL layer over Postgres (psycopg pool) and SQLite, so read models are written once.

Statements use `?` placeholders; the Postgres side rewrites them to `%s`. Timestamps are
timezone-aware `datetime`s on both sides (SQLite stores ISO-8601 text in UTC), JSON is text.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from psycopg.abc import Buffer
from psycopg.rows import dict_row
from psycopg.types.string import StrDumperUnknown
from psycopg_pool import ConnectionPool

from application.ports import StoreUnavailableError

Dialect = Literal["postgres", "sqlite"]
Row = dict[str, Any]


class Session(Protocol):
    """One open transaction on the read-model database."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many new rows at once (COPY on Postgres); a duplicate key fails it all."""
        ...

    def lock_row_clause(self) -> str:
        """`FOR UPDATE` where the database has row locks, else nothing."""
        ...


class Database(Protocol):
    """A read-model database: transactions and a liveness check."""

    dialect: Dialect

    def transaction(self) -> Any:
        """Context manager giving a `Session`; commits on success, rolls back on error."""
        ...

    def read(self) -> Any:
        """Context manager giving a `Session` for queries only (takes no write lock)."""
        ...

    def check(self) -> None: ...
    def close(self) -> None: ...


_QMARK = re.compile(r"\?")


def _to_pyformat(sql: str) -> str:
    # `%` must be escaped for psycopg before `?` becomes `%s` (LIKE patterns use `%`).
    return _QMARK.sub("%s", sql.replace("%", "%%"))


#: NUL cannot be stored in PostgreSQL text: it is written as U+FFFD (see `_NulSafeText`).
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\ufffd"}
)


def _copy_value(value: Any, cache: dict[int, str]) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    # Timestamps and ids repeat across a batch (one "now", one import): format each once.
    text = cache.get(id(value))
    if text is None:
        text = (value.isoformat() if isinstance(value, datetime) else str(value)).translate(
            _COPY_ESCAPES
        )
        cache[id(value)] = text
    return text


def copy_text(rows: Sequence[Sequence[Any]]) -> str:
    """Rows in COPY's text format (tab-separated, `\\N` for NULL, backslash escapes)."""
    cache: dict[int, str] = {}
    lines: list[str] = []
    for row in rows:
        # Fast path: text as it is; the line is escaped value by value only when it holds
        # a backslash (beyond its NULL markers), a tab (beyond its separators) or a newline.
        nulls = 0
        cells: list[str] = []
        for value in row:
            if value.__class__ is str:
                cells.append(value)
            elif value is None:
                cells.append("\\N")
                nulls += 1
            else:
                cells.append(_copy_value(value, cache))
        line = "\t".join(cells)
        if (
            line.count("\\") != nulls
            or line.count("\t") != len(cells) - 1
            or "\n" in line
            or "\r" in line
            or "\x00" in line
        ):
            line = "\t".join([_copy_value(value, cache) for value in row])
        lines.append(line)
    lines.append("")
    return "\n".join(lines)


class _NulSafeText(StrDumperUnknown):
    """Text parameters with NUL characters written as U+FFFD: PostgreSQL text cannot hold
    NUL, and a value that holds one (a command's output, say) must never stop a read model."""

    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_dumper(str, _NulSafeText)


class _PostgresSession:
    dialect: Dialect = "postgres"

    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(_to_pyformat(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(_to_pyformat(sql), rows)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._cursor.execute(_to_pyformat(sql), params)
        return self._cursor.fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(_to_pyformat(sql), params)
        return self._cursor.fetchall()

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        # COPY, fed text we format ourselves: several times faster than INSERTs, and than
        # formatting value by value through the driver (names are code constants).
        with self._cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(copy_text(rows))

    def lock_row_clause(self) -> str:
        return "FOR UPDATE"


@contextmanager
def _unavailable_as_error() -> Iterator[None]:
    """A lost or refused connection, or an exhausted pool, as the application's
    `StoreUnavailableError` (a PoolTimeout is a psycopg OperationalError)."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise StoreUnavailableError(f"PostgreSQL is unreachable: {exc}") from exc


class PostgresDatabase:
    """Read models in Postgres, through a psycopg connection pool."""

    dialect: Dialect = "postgres"

    def __init__(
        self, conninfo: str, *, schema: str = "public", min_size: int = 1, max_size: int = 3
    ) -> None:
        self._pool = ConnectionPool(
            conninfo,
            min_size=min(min_size, max_size),
            max_size=max_size,
            open=True,
            # How long a caller waits for a free (or new) connection before it is told the
            # database is unavailable.
            timeout=5.0,
            kwargs={
                "autocommit": False,
                "options": f"-c search_path={schema}",
                "connect_timeout": 5,
            },
            name="chronicle-read-models",
            configure=_configure,
        )

    def wait_open(self, timeout: float) -> None:
        """Wait until the pool holds its first connection (raises PoolTimeout otherwise)."""
        self._pool.wait(timeout)

    @contextmanager
    def transaction(self) -> Iterator[_PostgresSession]:
        with (
            _unavailable_as_error(),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            yield _PostgresSession(cur)

    read = transaction

    def check(self) -> None:
        with _unavailable_as_error(), self._pool.connection(timeout=3) as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self._pool.close()


def _adapt_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _convert_timestamp(raw: bytes) -> datetime:
    parsed = datetime.fromisoformat(raw.decode())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


sqlite3.register_adapter(datetime, _adapt_datetime)
sqlite3.register_converter("TIMESTAMP", _convert_timestamp)
sqlite3.register_converter("TIMESTAMPTZ", _convert_timestamp)


def _dict_factory(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}


class _SqliteSession:
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._conn.executemany(sql, rows)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = self._conn.execute(sql, params).fetchall()
        return rows

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if rows:
            self._conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)})"  # noqa: S608 - names are constants
                f" VALUES ({', '.join('?' for _ in columns)})",
                rows,
            )

    def lock_row_clause(self) -> str:
        return ""


class SqliteDatabase:
    """Read models in a SQLite file (embedded mode): one connection per thread, WAL journal.

    Every transaction starts with `BEGIN IMMEDIATE`, taking SQLite's single write lock at once:
    that is what serialises projection writers the way `FOR UPDATE` does on Postgres.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._path,
                detect_types=sqlite3.PARSE_DECLTYPES,
                isolation_level=None,
                check_same_thread=False,
                timeout=30,
            )
            conn.row_factory = _dict_factory
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[_SqliteSession]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteSession(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[_SqliteSession]:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            yield _SqliteSession(conn)
        finally:
            conn.execute("ROLLBACK")

    def check(self) -> None:
        self._connection().execute("SELECT 1")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
