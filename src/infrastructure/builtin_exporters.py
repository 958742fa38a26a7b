"""The built-in exporters: contacts, jobs, failed jobs, schedule runs and failed import rows.

Each reads its table a page at a time by keyset pagination on an indexed, unique key (`seq`,
an email, a row number), each page in its own short read transaction: memory stays flat and
no transaction stays open while a file is written, however many rows there are.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from application.exports.exporters import (
    ExportColumn,
    Exporter,
    ExporterRegistry,
    ExportFilter,
    ExportQuery,
    ExportRow,
)
from domain.job import QUEUES, JobStatus
from infrastructure.read_models.jobs import FAILED_LISTED
from infrastructure.sql import Database

#: Rows read per query.
PAGE_SIZE = 1_000

RUN_STATUSES = ("waiting", "running", "succeeded", "failed", "cancelled", "skipped")


@dataclass(frozen=True)
class _Source:
    """A keyset-paginated SELECT: `key` is a unique, indexed column (`key_field` its name in
    the result), read in ascending or descending order."""

    select: str
    key: str
    key_field: str
    descending: bool
    where: tuple[str, ...] = ()
    convert: Callable[[dict[str, Any]], ExportRow] = dict


def _stream(
    db: Database, source: _Source, where: Sequence[str], params: Sequence[Any], page_size: int
) -> Iterator[ExportRow]:
    last: Any = None
    order = "DESC" if source.descending else "ASC"
    while True:
        clauses = [*source.where, *where]
        args = list(params)
        if last is not None:
            clauses.append(f"{source.key} {'<' if source.descending else '>'} ?")
            args.append(last)
        sql = f"{source.select} WHERE {' AND '.join(clauses)} ORDER BY {source.key} {order} LIMIT ?"
        # Each page in its own read transaction, closed before its rows are written out.
        with db.read() as s:
            rows = s.fetchall(sql, [*args, page_size])
        for row in rows:
            yield source.convert(row)
        if len(rows) < page_size:
            return
        last = rows[-1][source.key_field]


def _equal_filters(
    query: ExportQuery, columns: dict[str, str]
) -> tuple[builtins.list[str], builtins.list[Any]]:
    """`column = ?` for each filter given (filter name → SQL column)."""
    where: list[str] = []
    params: list[Any] = []
    for name, column in columns.items():
        value = query.filters.get(name)
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return where, params


def _booleans(*names: str) -> Callable[[dict[str, Any]], ExportRow]:
    # SQLite hands booleans back as 0 and 1.
    def convert(row: dict[str, Any]) -> ExportRow:
        for name in names:
            if row.get(name) is not None:
                row[name] = bool(row[name])
        return row

    return convert


def _columns(*pairs: tuple[str, str]) -> list[ExportColumn]:
    return [ExportColumn(name, header) for name, header in pairs]


# -- contacts -------------------------------------------------------------------------------

CONTACTS = _Source(
    select="SELECT email, name, age, country, created_at, updated_at FROM contacts",
    key="email",
    key_field="email",
    descending=False,
    where=("tenant = ?",),
)


def contacts_exporter(db: Database, page_size: int = PAGE_SIZE) -> Exporter:
    def rows(query: ExportQuery) -> Iterator[ExportRow]:
        where, params = _equal_filters(query, {"country": "country"})
        return _stream(db, CONTACTS, where, [query.tenant, *params], page_size)

    return Exporter(
        name="contacts",
        description="Contacts (as the contacts importer keeps them), by email.",
        columns=_columns(
            ("email", "Email"),
            ("name", "Name"),
            ("age", "Age"),
            ("country", "Country"),
            ("created_at", "Created at"),
            ("updated_at", "Updated at"),
        ),
        rows=rows,
        filters=[ExportFilter("country", help="Only contacts of this country.")],
    )


# -- jobs -----------------------------------------------------------------------------------

_JOB_SELECT = (
    "SELECT seq, id, command, command_line, queue, status, attempts, max_attempts, requested_by,"
    " batch_id, schedule_id, dispatched_at, started_at, finished_at, failed_at, duration_ms,"
    " last_error_type, last_error_message, forgotten FROM jobs"
)
JOBS = _Source(
    select=_JOB_SELECT,
    key="seq",
    key_field="seq",
    descending=True,
    where=("tenant = ?",),
    convert=_booleans("forgotten"),
)
FAILED_JOBS = _Source(
    select=_JOB_SELECT,
    key="seq",
    key_field="seq",
    descending=True,
    # The partial index of the failed list is used only for this very predicate.
    where=("tenant = ?", FAILED_LISTED),
    convert=_booleans("forgotten"),
)
_QUEUE = ExportFilter("queue", help="high, default or low.", choices=QUEUES)
_COMMAND = ExportFilter("command", help="Registered command name, e.g. demo:echo.")


def jobs_exporter(db: Database, page_size: int = PAGE_SIZE) -> Exporter:
    def rows(query: ExportQuery) -> Iterator[ExportRow]:
        where, params = _equal_filters(
            query,
            {
                "status": "status",
                "queue": "queue",
                "command": "command",
                "batch_id": "batch_id",
                "schedule_id": "schedule_id",
            },
        )
        return _stream(db, JOBS, where, [query.tenant, *params], page_size)

    return Exporter(
        name="jobs",
        description="Jobs, newest first.",
        columns=_columns(
            ("id", "Job"),
            ("command_line", "Command line"),
            ("queue", "Queue"),
            ("status", "Status"),
            ("attempts", "Attempts"),
            ("max_attempts", "Max attempts"),
            ("requested_by", "Requested by"),
            ("dispatched_at", "Dispatched at"),
            ("started_at", "Started at"),
            ("finished_at", "Finished at"),
            ("duration_ms", "Duration (ms)"),
            ("last_error_type", "Error type"),
            ("last_error_message", "Error"),
            ("batch_id", "Batch"),
            ("schedule_id", "Schedule"),
        ),
        rows=rows,
        filters=[
            ExportFilter(
                "status",
                help="waiting, running, succeeded, failed or cancelled.",
                choices=tuple(status.value for status in JobStatus),
            ),
            _QUEUE,
            _COMMAND,
            ExportFilter("batch_id", "uuid", help="Only the jobs of this batch."),
            ExportFilter("schedule_id", "uuid", help="Only the jobs this schedule started."),
        ],
    )


def failed_jobs_exporter(db: Database, page_size: int = PAGE_SIZE) -> Exporter:
    def rows(query: ExportQuery) -> Iterator[ExportRow]:
        where, params = _equal_filters(
            query, {"queue": "queue", "command": "command", "error_type": "last_error_type"}
        )
        if query.filters.get("failed_from") is not None:
            where.append("failed_at >= ?")
            params.append(query.filters["failed_from"])
        if query.filters.get("failed_to") is not None:
            where.append("failed_at < ?")
            params.append(query.filters["failed_to"])
        return _stream(db, FAILED_JOBS, where, [query.tenant, *params], page_size)

    return Exporter(
        name="failed-jobs",
        description="Failed jobs (not forgotten), newest first, with their last error.",
        columns=_columns(
            ("id", "Job"),
            ("command_line", "Command line"),
            ("queue", "Queue"),
            ("attempts", "Attempts"),
            ("failed_at", "Failed at"),
            ("last_error_type", "Error type"),
            ("last_error_message", "Error"),
            ("requested_by", "Requested by"),
            ("dispatched_at", "Dispatched at"),
            ("batch_id", "Batch"),
            ("schedule_id", "Schedule"),
        ),
        rows=rows,
        filters=[
            _QUEUE,
            _COMMAND,
            ExportFilter("error_type", help="Exception class of the last failure."),
            ExportFilter("failed_from", "datetime", help="Last attempt failed at or after this."),
            ExportFilter("failed_to", "datetime", help="Last attempt failed before this."),
        ],
    )


# -- schedule runs --------------------------------------------------------------------------

SCHEDULE_RUNS = _Source(
    select=(
        "SELECT r.seq, r.schedule_id, s.name AS schedule, r.due_at, r.triggered_at, r.manual,"
        " r.status, r.job_id, r.attempts, r.started_at, r.finished_at, r.duration_ms,"
        " r.outcome, r.error, r.skip_reason, r.skip_detail, r.skip_count, r.dst,"
        " r.triggered_by FROM schedule_runs r LEFT JOIN schedules s ON s.id = r.schedule_id"
    ),
    key="r.seq",
    key_field="seq",
    descending=True,
    where=("r.tenant = ?",),
    convert=_booleans("manual"),
)


def schedule_runs_exporter(db: Database, page_size: int = PAGE_SIZE) -> Exporter:
    def rows(query: ExportQuery) -> Iterator[ExportRow]:
        where, params = _equal_filters(
            query, {"schedule_id": "r.schedule_id", "status": "r.status"}
        )
        return _stream(db, SCHEDULE_RUNS, where, [query.tenant, *params], page_size)

    return Exporter(
        name="schedule-runs",
        description="Schedule runs (every tick, run or skipped), newest first.",
        columns=_columns(
            ("schedule_id", "Schedule"),
            ("schedule", "Schedule name"),
            ("due_at", "Due at"),
            ("triggered_at", "Triggered at"),
            ("manual", "Manual"),
            ("status", "Status"),
            ("job_id", "Job"),
            ("attempts", "Attempts"),
            ("started_at", "Started at"),
            ("finished_at", "Finished at"),
            ("duration_ms", "Duration (ms)"),
            ("outcome", "Outcome"),
            ("error", "Error"),
            ("skip_reason", "Skip reason"),
            ("skip_detail", "Skip detail"),
            ("skip_count", "Skipped ticks"),
            ("dst", "DST rule"),
            ("triggered_by", "Triggered by"),
        ),
        rows=rows,
        filters=[
            ExportFilter("schedule_id", "uuid", help="Only the runs of this schedule."),
            ExportFilter(
                "status",
                help=f"{', '.join(RUN_STATUSES[:-1])} or {RUN_STATUSES[-1]}.",
                choices=RUN_STATUSES,
            ),
        ],
    )


# -- failed import rows ---------------------------------------------------------------------


def _import_row(row: dict[str, Any]) -> ExportRow:
    return {
        "import_id": row["import_id"],
        "row": row["number"],
        "error": row["error"],
        "data": row["data"],
    }


FAILED_IMPORT_ROWS = _Source(
    select="SELECT import_id, number, error, data FROM import_failed_rows",
    key="number",
    key_field="number",
    descending=False,
    # Rows a later retry made pass are no longer failed.
    where=("tenant = ?", "import_id = ?", "COALESCE(passed, FALSE) = FALSE"),
    convert=_import_row,
)


def failed_import_rows_exporter(db: Database, page_size: int = PAGE_SIZE) -> Exporter:
    def rows(query: ExportQuery) -> Iterator[ExportRow]:
        params = [query.tenant, query.filters["import_id"]]
        return _stream(db, FAILED_IMPORT_ROWS, [], params, page_size)

    return Exporter(
        name="failed-import-rows",
        description="The rows of an import that failed (and still fail), by row number.",
        columns=_columns(
            ("import_id", "Import"),
            ("row", "Row"),
            ("error", "Error"),
            ("data", "Data"),
        ),
        rows=rows,
        filters=[
            ExportFilter("import_id", "uuid", help="The import whose rows failed.", required=True)
        ],
    )


def builtin_exporters(db: Database, page_size: int = PAGE_SIZE) -> list[Exporter]:
    """Every built-in exporter over the read-model database `db`."""
    return [
        factory(db, page_size)
        for factory in (
            contacts_exporter,
            jobs_exporter,
            failed_jobs_exporter,
            schedule_runs_exporter,
            failed_import_rows_exporter,
        )
    ]


def register_builtin_exporters(
    registry: ExporterRegistry, db: Database, page_size: int = PAGE_SIZE
) -> None:
    """Add the built-in exporters to `registry`."""
    for exporter in builtin_exporters(db, page_size):
        registry.register(exporter)
