"""The keys of an import's unique columns in a SQLite file, so memory stays flat."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

#: Keys per query (SQLite allows a limited number of parameters per statement).
_BATCH = 500


def _text(key: Any) -> str:
    # The type is part of the key: the int 5 and the text "5" are different keys.
    return f"{type(key).__name__}:{key}"


class SqliteUniqueKeys:
    """UniqueKeys in a throw-away SQLite file: an index on disk with a small page cache.

    Nothing here needs to survive a crash (a re-run validates from the first row again),
    so the file is written without a journal or fsync.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._path = path
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = OFF")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._conn.execute("PRAGMA cache_size = -8192")  # KiB: 8 MiB of pages at most
        self._conn.execute(
            "CREATE TABLE keys (col TEXT NOT NULL, key TEXT NOT NULL, row INTEGER NOT NULL,"
            " PRIMARY KEY (col, key)) WITHOUT ROWID"
        )

    def find(self, column: str, keys: Collection[Any]) -> dict[Any, int]:
        by_text = {_text(key): key for key in keys}
        texts = list(by_text)
        found: dict[Any, int] = {}
        for start in range(0, len(texts), _BATCH):
            batch = texts[start : start + _BATCH]
            marks = ", ".join("?" for _ in batch)
            rows = self._conn.execute(
                f"SELECT key, row FROM keys WHERE col = ? AND key IN ({marks})",  # noqa: S608 - placeholders only
                [column, *batch],
            )
            for text, row in rows:
                found[by_text[text]] = int(row)
        return found

    def add(self, column: str, claimed: Sequence[tuple[Any, int]]) -> None:
        self._conn.execute("BEGIN")
        self._conn.executemany(
            "INSERT INTO keys (col, key, row) VALUES (?, ?, ?)",
            [(column, _text(key), row) for key, row in claimed],
        )
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
