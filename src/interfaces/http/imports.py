"""`/api/imports`: upload a CSV for an importer, follow it, download and retry its failed rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, JSONBody, QueryParameter
from litestar.response import Stream
from msgspec import Meta, Struct, field

from application.imports.importers import describe_errors
from application.imports.service import ImportRequest, import_job_id
from application.imports.view import FailedImportRow, ImportFilter, ImportRow
from domain.data_import import ImportStatus
from domain.principals import Action
from domain.shared import ValidationError
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION
from interfaces.http.dependencies import Caller, parse_id
from interfaces.http.errors import error_responses
from interfaces.http.inputs import decode_json_field
from interfaces.http.jobs import MAX_LIMIT, Cursor, Limit, id_path
from interfaces.http.schemas.common import utc, utc_or_none

ImportId = Annotated[str, id_path("import")]
#: The largest row number (the read model's INTEGER column).
MAX_ROW_NUMBER = 2**31 - 1
#: Room for the multipart envelope and the small form fields next to the file.
FORM_OVERHEAD_BYTES = 1024 * 1024


# -- bodies -----------------------------------------------------------------------------------


@dataclass
class ImportUpload:
    """The multipart form of a new import."""

    file: UploadFile
    importer: str
    mapping: str | None = None
    options: str | None = None
    delimiter: str | None = None
    chunk_size: int | None = None


class RetryFailedRows(Struct, kw_only=True, forbid_unknown_fields=True):
    """Which failed rows to run again, and corrected values by CSV column for some of them."""

    rows: list[int] | None = None
    corrections: dict[str, dict[str, str]] | None = None


class CancelImport(Struct, kw_only=True, forbid_unknown_fields=True):
    """Why the import is cancelled (recorded on its job and in the import's failure)."""

    reason: Annotated[str, Meta(max_length=2000)] = ""


class ImportLinks(Struct, kw_only=True):
    self: str
    failed_rows: str
    failed_rows_csv: str
    job: str | None


class ImportView(Struct, kw_only=True):
    """An import: the upload, where it stands, totals and progress."""

    id: UUID
    importer: str
    file_name: str
    file_size: int
    status: str
    rows: int
    succeeded: int
    failed: int
    progress: float
    chunks: int
    header: list[str]
    mapping: dict[str, str]
    options: dict[str, Any]
    chunk_size: int
    failure: str | None
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    last_retry_at: datetime | None
    links: ImportLinks


class ImportPage(Struct, kw_only=True):
    """A page of imports, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[ImportView]
    next_cursor: str | None


class FailedRowView(Struct, kw_only=True):
    """A row that was not imported: its line number, its data as read and why."""

    number: int
    data: dict[str, str]
    errors: dict[str, str]
    error: str
    passed: bool
    passed_at: datetime | None


class FailedRowPage(Struct, kw_only=True):
    """Failed rows by row number; pass `next_after` as `after` for the next page."""

    items: list[FailedRowView]
    next_after: int | None


class RetryResult(Struct, kw_only=True):
    """What a retry did: the rows that passed, those still failing with their errors."""

    passed: list[int]
    still_failing: list[FailedRowView]
    import_: ImportView = field(name="import")


# -- views ------------------------------------------------------------------------------------


def import_path(import_id: UUID) -> str:
    return f"/api/imports/{import_id}"


def _links(import_id: UUID) -> ImportLinks:
    path = import_path(import_id)
    return ImportLinks(
        self=path,
        failed_rows=f"{path}/failed-rows",
        failed_rows_csv=f"{path}/failed-rows.csv",
        job=f"/api/jobs/{import_job_id(import_id)}",
    )


def row_view(row: ImportRow) -> ImportView:
    return ImportView(
        id=row.id,
        importer=row.importer,
        file_name=row.file_name,
        file_size=row.file_size,
        status=row.status,
        rows=row.rows,
        succeeded=row.succeeded,
        failed=row.failed,
        progress=row.progress,
        chunks=row.chunks,
        header=row.header,
        mapping=row.mapping,
        options=row.options,
        chunk_size=row.chunk_size,
        failure=row.failure,
        requested_by=row.requested_by,
        started_at=utc(row.started_at),
        finished_at=utc_or_none(row.finished_at),
        duration_seconds=row.duration_seconds,
        last_retry_at=utc_or_none(row.last_retry_at),
        links=_links(row.id),
    )


def _failed_view(row: FailedImportRow) -> FailedRowView:
    return FailedRowView(
        number=row.number,
        data=row.data,
        errors=row.errors,
        error=row.error,
        passed=row.passed,
        passed_at=utc_or_none(row.passed_at),
    )


# -- form fields ------------------------------------------------------------------------------


def parse_mapping(raw: str | None) -> dict[str, str]:
    """A mapping from CSV headers to importer columns: a JSON object or `a=b,c=d`."""
    if raw is None or not raw.strip():
        return {}
    text = raw.strip()
    if text.startswith("{"):
        value = decode_json_field(text, "mapping")
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValidationError(
                "mapping must map CSV column names to importer column names (strings)",
                field="mapping",
            )
        return value
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValidationError(
                f"mapping entry {pair.strip()!r} must look like 'CSV column=importer column'",
                field="mapping",
            )
        mapping[source.strip()] = target.strip()
    return mapping


def parse_options(raw: str | None) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    value = decode_json_field(raw, "options")
    if not isinstance(value, dict):
        raise ValidationError("options must be a JSON object", field="options")
    return value


class ImportController(Controller):
    """Imports of the caller's tenant (`create_app` sets the body limit from the settings)."""

    path = "/api/imports"
    tags = ["imports"]

    @post(
        "/",
        opt={ACTION: Action.IMPORT},
        operation_id="startImport",
        summary="Upload a CSV file to import",
        description=(
            "Multipart form: `file` (CSV, UTF-8 with or without BOM, `,` or `;`), `importer`, "
            "optional `mapping` (JSON object or `CSV column=importer column,…`), `options` "
            "(JSON object), `delimiter`, `chunk_size`. The file is stored and imported by a "
            "job in chunks. 413 beyond the upload limit (CHRONICLE_IMPORT_MAX_BYTES); 422 for "
            "an unknown importer, option or column, a mapping from a column the file lacks, or "
            "a file that is not CSV. A file without the importer's required columns is "
            "recorded as a failed import that names them (status `failed`)."
        ),
        status_code=201,
        sync_to_thread=True,
        responses=error_responses(400, 413, 422),
    )
    def start(
        self,
        *,
        data: Annotated[ImportUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> Response[ImportView]:
        upload = data.file
        try:
            started = chronicle.imports.start(
                ImportRequest(
                    importer=data.importer,
                    file_name=upload.filename or "upload.csv",
                    mapping=parse_mapping(data.mapping),
                    options=parse_options(data.options),
                    delimiter=data.delimiter or None,
                    chunk_size=data.chunk_size,
                    tenant=caller.tenant,
                    by=caller.user,
                ),
                upload.file,  # type: ignore[arg-type]
            )
        finally:
            upload.file.close()
        body = row_view(
            chronicle.import_reads.get(caller.tenant, started.id, at_least=started.version).value
        )
        return Response(body, status_code=201, headers={"Location": import_path(started.id)})

    @get(
        "/",
        operation_id="listImports",
        summary="List imports",
        description=f"Newest first, with status, totals and progress. At most {MAX_LIMIT} a page.",
        sync_to_thread=True,
        responses=error_responses(400, 422),
    )
    def list_imports(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        status: Annotated[
            ImportStatus | None, QueryParameter(description="Only imports in this status.")
        ] = None,
        importer: Annotated[str | None, QueryParameter(description="Only this importer.")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ImportPage:
        rows, next_cursor = chronicle.import_queries.list_imports(
            ImportFilter(caller.tenant, status=status.value if status else None, importer=importer),
            limit=limit,
            cursor=cursor or None,
        )
        return ImportPage(items=[row_view(row) for row in rows], next_cursor=next_cursor)

    @get(
        "/{import_id:str}",
        operation_id="getImport",
        summary="One import",
        description=(
            "Status (processing, completed, completed_with_failures, failed), totals (rows, "
            "succeeded, failed), progress while it runs (share of the file read), duration, "
            "and the reason when it failed as a whole."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="import"),
    )
    def get_import(
        self,
        *,
        import_id: ImportId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> ImportView:
        return row_view(
            chronicle.import_reads.get(caller.tenant, parse_id(import_id, "import")).value
        )

    @get(
        "/{import_id:str}/failed-rows",
        operation_id="listImportFailedRows",
        summary="Failed rows of an import",
        description=(
            "By row number (the file's line where the row starts): the row's data by CSV "
            "column, an error per column (`row` for problems of the whole row) and one line "
            "saying it all. Rows that passed a retry are left out unless `include_passed`."
        ),
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="import"),
    )
    def failed_rows(
        self,
        *,
        import_id: ImportId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        limit: Limit = 100,
        after: Annotated[
            int,
            QueryParameter(
                ge=0,
                # Row numbers are INTEGER columns: a larger one matches nothing anyway.
                le=MAX_ROW_NUMBER,
                description=f"`next_after` of the previous page (0 to {MAX_ROW_NUMBER}).",
            ),
        ] = 0,
        include_passed: Annotated[
            bool, QueryParameter(description="Also rows that passed a retry.")
        ] = False,
    ) -> FailedRowPage:
        rows = chronicle.import_reads.failed_rows(
            caller.tenant,
            parse_id(import_id, "import"),
            limit=limit + 1,
            after=after,
            include_passed=include_passed,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return FailedRowPage(
            items=[_failed_view(row) for row in rows],
            next_after=rows[-1].number if more else None,
        )

    @get(
        "/{import_id:str}/failed-rows.csv",
        operation_id="downloadImportFailedRows",
        summary="Failed rows as CSV, ready to fix and upload again",
        description=(
            "A `row` column, the file's own columns, and an `error` column. Fix the values and "
            "upload the file again as a new import (the extra columns are ignored), or send "
            "the corrections to `retry-failed`. Text a spreadsheet would run as a formula "
            "(starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, "
            "which an import of the file removes again."
        ),
        sync_to_thread=True,
        media_type="text/csv",
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type="text/csv",
                description="The failed rows as CSV (UTF-8 with a BOM), as an attachment.",
                generate_examples=False,
            ),
            **error_responses(400, 404, 422, resource="import"),
        },
    )
    def failed_rows_csv(
        self,
        *,
        import_id: ImportId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> Stream:
        reads = chronicle.import_reads
        found = reads.get(caller.tenant, parse_id(import_id, "import")).value
        stem = found.file_name.rsplit(".", 1)[0] or "import"
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:100]
        return Stream(
            reads.failed_rows_csv(caller.tenant, found),
            # Litestar adds the charset to text/* types itself.
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{safe}-failed-rows.csv"',
            },
        )

    @post(
        "/{import_id:str}/cancel",
        opt={ACTION: Action.IMPORT},
        operation_id="cancelImport",
        summary="Cancel an import",
        description=(
            "Cancels the import's job: at once if it waits, between two chunks if it runs. The "
            'body is optional (`{"reason": "…"}`). The import then ends `failed`, its '
            "failure naming who cancelled it and why; rows of chunks already written stay. 409 "
            "once the import has ended."
        ),
        status_code=202,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 413, 422, resource="import"),
    )
    def cancel(
        self,
        *,
        import_id: ImportId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        data: JSONBody[CancelImport | None] = None,
    ) -> ImportView:
        parsed = parse_id(import_id, "import")
        reason = data.reason if data else ""
        chronicle.imports.cancel(parsed, tenant=caller.tenant, by=caller.user, reason=reason)
        return row_view(chronicle.import_reads.get(caller.tenant, parsed).value)

    @post(
        "/{import_id:str}/retry-failed",
        opt={ACTION: Action.IMPORT},
        operation_id="retryImportFailedRows",
        summary="Run failed rows again, optionally corrected",
        description=(
            "`corrections` maps a row number to new values by CSV column (only the columns "
            "to change); `rows` limits the retry to those rows (default: every failing row). "
            "The rows are validated and written again; the answer says which passed and which "
            "still fail with their new errors. 409 while the import runs or when nothing "
            "failed; 422, retrying no row, for a row in `rows` or `corrections` that is not "
            "failing (no such row, or it passed an earlier retry) or a column the file does "
            "not have (corrections use the file's own column names, not the importer's)."
        ),
        status_code=200,
        sync_to_thread=True,
        responses=error_responses(400, 404, 409, 413, 422, resource="import"),
    )
    def retry_failed(
        self,
        *,
        import_id: ImportId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        data: JSONBody[RetryFailedRows],
    ) -> RetryResult:
        parsed = parse_id(import_id, "import")
        body = data
        corrections: dict[int, dict[str, str]] = {}
        for key, values in (body.corrections or {}).items():
            if not key.strip().isdigit():
                raise ValidationError(
                    f"corrections are keyed by row number, got {key[:50]!r}", field="corrections"
                )
            corrections[int(key)] = values
        outcome = chronicle.imports.retry_failed(
            parsed, tenant=caller.tenant, by=caller.user, corrections=corrections, rows=body.rows
        )
        return RetryResult(
            passed=outcome.passed,
            still_failing=[
                FailedRowView(
                    number=row.number,
                    data=row.data,
                    errors=row.errors,
                    error=describe_errors(row.errors),
                    passed=False,
                    passed_at=None,
                )
                for row in outcome.still_failing
            ],
            import_=row_view(chronicle.import_reads.get(caller.tenant, parsed).value),
        )
