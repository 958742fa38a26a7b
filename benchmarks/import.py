"""CSV import rate and memory against a plain Postgres COPY of the same file, same run.

    uv run python benchmarks/import.py [--rows 1000000] [--bad 0.01] [--chunk-size 1000]

The file: a contacts CSV (name, email, age, country) with `--bad` of its rows invalid (a bad
email, an age out of range or an unknown country, in turn).
COPY: into a table with the same columns and a primary key on email, in a fresh schema —
Postgres doing nothing but loading (no validation): once fed the file's bytes
(`FORMAT csv`), once fed rows read by Python's csv module (`write_row`), the reference point
DESIGN.md names.
Chronicle: in a child process on a fresh schema, the upload is stored and started
(`ImportService.start`) and its job body runs (`ImportService.run`): streaming parse, typed
validation with per-row errors, unique emails, contacts written chunk by chunk, one event per
chunk with its failed rows. The rate counts every row from start to the Completed event. The
imports read model (failed rows table) is then caught up and timed apart. Peak memory is the
child's peak RSS, next to its RSS before the import started (the keys of unique columns are
kept in a SQLite scratch file, so memory does not grow with the number of rows; the failed
rows of the import are held by the Import aggregate).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get(
    "CHRONICLE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
COUNTRIES = ("DE", "IT", "US", "FR", "GB", "NL", "ES", "PL")


def write_file(path: Path, rows: int, bad_share: float) -> int:
    """Write the CSV; returns how many rows are invalid."""
    every = round(1 / bad_share) if bad_share > 0 else 0
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("name,email,age,country\r\n")
        for n in range(1, rows + 1):
            name, email = f"Person {n}", f"person{n}@example.com"
            age, country = str(n % 100), COUNTRIES[n % len(COUNTRIES)]
            if every and n % every == 0:
                bad += 1
                kind = (n // every) % 3
                if kind == 0:
                    email = f"person{n}-at-example.com"
                elif kind == 1:
                    age = "200"
                else:
                    country = "XX"
            out.write(f'"{name}",{email},{age},{country}\r\n')
    return bad


def copy_rate(path: Path, *, row_by_row: bool = False) -> float:
    """COPY of the file: its bytes as they are (Postgres parses the CSV), or row by row from
    Python's csv module (DESIGN.md's reference point, "Python COPY into a table with PK")."""
    schema = f"bench_copy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            conn.execute(
                f"CREATE TABLE {schema}.contacts (name TEXT NOT NULL, email TEXT PRIMARY KEY,"
                " age INTEGER, country TEXT)"
            )
            started = time.perf_counter()
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(
                    f"COPY {schema}.contacts FROM STDIN"
                    if row_by_row
                    else f"COPY {schema}.contacts FROM STDIN WITH (FORMAT csv, HEADER true)"
                ) as copy,
                path.open("rb") as source,
            ):
                if row_by_row:
                    reader = csv.reader(io.TextIOWrapper(source, encoding="utf-8", newline=""))
                    next(reader)
                    for row in reader:
                        copy.write_row(row)
                else:
                    while block := source.read(1024 * 1024):
                        copy.write(block)
            elapsed = time.perf_counter() - started
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    rows = sum(1 for _ in path.open("rb")) - 1
    return rows / elapsed


CHILD = """
import json, resource, sys, time
from pathlib import Path
from application.imports.service import ImportRequest
from infrastructure.settings import Settings
from interfaces.bootstrap import bootstrap

url, schema, data_dir, path, chunk = sys.argv[1:6]
app = bootstrap(Settings(database_url=url, database_schema=schema, data_dir=Path(data_dir),
                         import_chunk_size=int(chunk)))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
with open(path, "rb") as stream:
    imp = app.imports.start(ImportRequest(importer="contacts", file_name="bench.csv"), stream)
stored = time.perf_counter()
summary = app.imports.run(imp.id)
finished = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
app.runners["imports"].catch_up()
projected = time.perf_counter()
print(json.dumps({**summary, "seconds": finished - started, "store_seconds": stored - started,
                  "projection_seconds": projected - finished,
                  "rss_before_kib": before, "rss_peak_kib": peak}))
app.close()
"""


def chronicle_run(path: Path, chunk_size: int) -> dict[str, float]:
    schema = f"bench_import_{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            env = {
                **os.environ,
                "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
                "CHRONICLE_LOG_LEVEL": "warning",
            }
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    DATABASE_URL,
                    schema,
                    data_dir,
                    str(path),
                    str(chunk_size),
                ],
                capture_output=True,
                text=True,
                check=False,
                env=env,
            )
            if proc.returncode != 0:
                sys.exit(f"the Chronicle run failed:\n{proc.stderr[-3000:]}")
            result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
            return result
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bad", type=float, default=0.01, help="share of invalid rows")
    parser.add_argument("--chunk-size", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contacts.csv"
        bad = write_file(path, args.rows, args.bad)
        size_mb = path.stat().st_size / 1024 / 1024
        print(f"file: {args.rows:,} rows ({bad:,} invalid), {size_mb:.1f} MiB")
        copy = copy_rate(path)
        print(f"Postgres COPY:  {copy:>10,.0f} rows/s (the file's bytes, parsed by Postgres)")
        python_copy = copy_rate(path, row_by_row=True)
        print(f"Python COPY:    {python_copy:>10,.0f} rows/s (csv module rows, psycopg write_row)")
        result = chronicle_run(path, args.chunk_size)
    rate = result["rows"] / result["seconds"]
    print(
        f"Chronicle:      {rate:>10,.0f} rows/s end to end ({result['rows']:,} rows, "
        f"{result['succeeded']:,} imported, {result['failed']:,} failed rows kept; "
        f"status {result['status']})"
    )
    pad = " " * 16
    print(f"{pad}storing the upload: {result['store_seconds']:.2f} s of {result['seconds']:.1f} s")
    print(f"{pad}imports read model caught up in {result['projection_seconds']:.2f} s after")
    before, peak = result["rss_before_kib"] / 1024, result["rss_peak_kib"] / 1024
    growth = peak - before
    print(f"peak memory:    {peak:.0f} MiB RSS (before the import {before:.0f}, +{growth:.0f} MiB)")
    print(
        f"ratio:          {rate / copy:.2f} x Postgres COPY, {rate / python_copy:.2f} x Python COPY"
        " (target >= 0.3)"
    )
    if result["failed"] != bad:
        sys.exit(f"expected {bad} failed rows, got {result['failed']}")


if __name__ == "__main__":
    main()
