"""`chronicle import` and `chronicle imports`: upload a CSV, follow it, see and fix failed rows."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import click

from application.imports.csv_reader import CsvFileError, read_rows
from application.imports.importers import describe_errors
from application.imports.service import ImportRequest, import_job_id
from application.imports.view import ImportFilter, ImportRow
from application.reads.imports import failed_rows_columns
from domain.data_import import ImportStatus
from domain.job import JobStatus
from domain.shared import DEFAULT_TENANT, DomainError, NotFoundError
from interfaces.bootstrap import Chronicle
from interfaces.cli.common import catch_up_if_embedded, cli_actor, fmt_time, open_chronicle
from interfaces.http.inputs import decode_json_field

#: Seconds without a worker taking the import before `--wait` says what it is waiting for.
NO_WORKER_HINT_AFTER = 10.0
EXIT_FAILED = 1
EXIT_ROWS_FAILED = 2

_STATUS_CODES = {
    ImportStatus.COMPLETED.value: 0,
    ImportStatus.COMPLETED_WITH_FAILURES.value: EXIT_ROWS_FAILED,
    ImportStatus.FAILED.value: EXIT_FAILED,
}


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise click.BadParameter(f"{value!r} must look like NAME=VALUE", param_hint=what)
        pairs[key.strip()] = target.strip()
    return pairs


def _option_value(text: str) -> Any:
    """A JSON value (`true`, `3`, `["a"]`), or the text itself when it is not JSON; held to
    the rules of JSON sent to the API (nesting, NUL)."""
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        pass  # decode_json_field says what is wrong with it
    try:
        return decode_json_field(text, "--option")
    except DomainError as exc:
        raise click.BadParameter(str(exc), param_hint="--option") from None


def _import_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise click.BadParameter(f"{raw!r} is not an import id (a UUID)") from None


def _print(view: ImportRow) -> None:
    click.echo(f"{'id':>12}: {view.id}")
    click.echo(f"{'importer':>12}: {view.importer}")
    click.echo(f"{'file':>12}: {view.file_name} ({view.file_size:,} bytes)")
    click.echo(f"{'status':>12}: {view.status}")
    if view.status == ImportStatus.PROCESSING:
        click.echo(f"{'progress':>12}: {view.progress}% of the file read")
    click.echo(
        f"{'rows':>12}: {view.rows:,} ({view.succeeded:,} succeeded, {view.failed:,} failed)"
    )
    if view.mapping:
        mapping = ", ".join(f"{source} → {target}" for source, target in view.mapping.items())
        click.echo(f"{'mapping':>12}: {mapping}")
    if view.options:
        click.echo(f"{'options':>12}: {json.dumps(view.options)}")
    click.echo(f"{'started':>12}: {fmt_time(view.started_at)} by {view.requested_by}")
    if view.finished_at:
        click.echo(f"{'finished':>12}: {fmt_time(view.finished_at)} ({view.duration_seconds} s)")
    if view.failure:
        click.echo(f"{'failure':>12}: {view.failure}")
    if view.failed:
        click.echo(f"{'failed rows':>12}: chronicle imports failed-rows {view.id}")


def _wait(app: Chronicle, import_id: UUID, tenant: str) -> ImportRow:
    """Follow the import (as of its current version: no projector needed) with a progress
    bar."""
    found = app.import_reads.get(tenant, import_id).value
    waited = 0.0
    hinted = False
    with click.progressbar(
        length=max(found.file_size, 1), label="importing", file=sys.stderr, show_percent=True
    ) as bar:
        shown = 0
        while found.status == ImportStatus.PROCESSING:
            time.sleep(0.25)
            waited += 0.25
            found = app.import_reads.get(tenant, import_id).value
            position = min(found.bytes_read, found.file_size)
            if position > shown:
                bar.update(position - shown)
                shown = position
            if not hinted and waited >= NO_WORKER_HINT_AFTER and not found.chunks:
                job = app.job_reads.get(tenant, import_job_id(import_id)).value
                if job.row.status == JobStatus.WAITING:
                    hinted = True
                    click.echo(
                        "\nno worker has taken the import yet: is `chronicle up` or "
                        "`chronicle worker` running against this store?",
                        err=True,
                    )
        bar.update(max(found.file_size, 1) - shown)
    return found


@click.command("import")
@click.argument("importer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="CSV_COLUMN=FIELD",
    help="Read importer column FIELD from CSV column CSV_COLUMN (repeatable).",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="NAME=VALUE",
    help="Importer option, e.g. update_existing=true (repeatable).",
)
@click.option("--delimiter", help="Field delimiter (default: detected, ',' or ';').")
@click.option("--chunk-size", type=click.IntRange(1, 50_000), help="Rows per chunk.")
@click.option("--wait", is_flag=True, help="Follow the import with a progress bar until it ends.")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
def import_file(
    importer: str,
    file: Path,
    mappings: tuple[str, ...],
    options: tuple[str, ...],
    delimiter: str | None,
    chunk_size: int | None,
    wait: bool,
    tenant: str,
) -> None:
    """Import FILE (CSV) with IMPORTER; workers import it in chunks.

    With --wait the exit status says how it ended: 0 completed, 2 completed with failed
    rows, 1 failed.

    \b
    Example:
      chronicle import contacts people.csv --map "E-mail=email" --option update_existing=true --wait
    """
    mapping = _pairs(mappings, "--map")
    option_values = {key: _option_value(v) for key, v in _pairs(options, "--option").items()}
    with open_chronicle() as app:
        limit = app.imports.max_bytes
        size = file.stat().st_size
        if size > limit:
            raise click.ClickException(
                f"{file} is {size:,} bytes, over the upload limit of {limit:,} bytes "
                "(CHRONICLE_IMPORT_MAX_BYTES)"
            )
        with file.open("rb") as stream:
            started = app.imports.start(
                ImportRequest(
                    importer=importer,
                    file_name=file.name,
                    mapping=mapping,
                    options=option_values,
                    delimiter=delimiter,
                    chunk_size=chunk_size,
                    tenant=tenant,
                    by=cli_actor(),
                ),
                stream,
            )
        click.echo(f"import {started.id} started")
        view = (
            _wait(app, started.id, tenant)
            if wait
            else app.import_reads.get(tenant, started.id, at_least=started.version).value
        )
        if wait or view.status != ImportStatus.PROCESSING:
            _print(view)
        code = _STATUS_CODES.get(view.status, 0)
    sys.exit(code)


@click.group()
def imports() -> None:
    """CSV imports: list, show, failed rows, retry failed rows."""


@imports.command("list")
@click.option("--status", type=click.Choice([s.value for s in ImportStatus]))
@click.option("--importer")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
def imports_list(status: str | None, importer: str | None, limit: int, tenant: str) -> None:
    """The latest imports, newest first."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        rows, _ = app.import_queries.list_imports(
            ImportFilter(tenant, status=status, importer=importer), limit=limit
        )
    if not rows:
        click.echo("no imports")
        return
    click.echo(
        f"{'id':36}  {'importer':12}  {'status':24}  {'rows':>9}  {'failed':>7}  "
        f"{'started':19}  file"
    )
    for row in rows:
        click.echo(
            f"{row.id!s:36}  {row.importer:12.12}  {row.status:24}  {row.rows:>9,}  "
            f"{row.failed:>7,}  {fmt_time(row.started_at):19}  {row.file_name}"
        )


@imports.command("show")
@click.argument("import_id")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
def imports_show(import_id: str, tenant: str) -> None:
    """One import: status, totals, progress, why it failed."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        _print(app.import_reads.get(tenant, _import_id(import_id)).value)


@imports.command("failed-rows")
@click.argument("import_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write them as CSV (row, the file's columns, error) to fix and upload again.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
def imports_failed_rows(import_id: str, output: Path | None, limit: int, tenant: str) -> None:
    """The rows of an import that failed, with their errors."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        view = app.import_reads.get(tenant, _import_id(import_id)).value
        if output is not None:
            with output.open("wb") as out:
                for block in app.import_reads.failed_rows_csv(tenant, view):
                    out.write(block)
            click.echo(f"{view.failed:,} failed rows written to {output}")
            return
        rows = app.import_reads.failed_rows(tenant, view.id, limit=limit)
    if not rows:
        click.echo("no failed rows")
        return
    for row in rows:
        click.echo(f"row {row.number}: {row.error}")
    if len(rows) < view.failed:
        click.echo(f"… {view.failed - len(rows):,} more (use --limit or -o FILE)")


def _corrections(path: Path, header: list[str]) -> dict[int, dict[str, str]]:
    """Corrected rows from a CSV shaped like the failed-rows download (a `row` column).

    It is read as an upload is (`read_rows`), so the `'` the download puts before `-`, `+`,
    `=` or `@` is removed the same way on both paths.
    """
    row_column, _ = failed_rows_columns(header)
    with path.open("rb") as stream:
        try:
            csv_file = read_rows(stream)
        except CsvFileError as exc:
            raise click.ClickException(f"{path}: {exc}") from None
        if row_column not in csv_file.header:
            raise click.ClickException(
                f"{path} has no {row_column!r} column: use the file `imports failed-rows -o` wrote"
            )
        corrections: dict[int, dict[str, str]] = {}
        for parsed in csv_file:
            if parsed.values is None:
                raise click.ClickException(f"{path}, line {parsed.number}: {parsed.error}")
            line = dict(zip(csv_file.header, parsed.values, strict=True))
            number = line[row_column].strip()
            if not number.isdigit():
                raise click.ClickException(
                    f"{path}, line {parsed.number}: {number!r} in column {row_column!r} is no row"
                )
            corrections[int(number)] = {name: line[name] for name in header if name in line}
    return corrections


@imports.command("retry-failed")
@click.argument("import_id")
@click.option(
    "--file",
    "corrected",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Corrected rows: the `failed-rows -o` CSV with its values fixed.",
)
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
def imports_retry_failed(import_id: str, corrected: Path | None, tenant: str) -> None:
    """Run the failed rows of an import again (corrected from --file when given)."""
    with open_chronicle() as app:
        parsed = _import_id(import_id)
        try:
            found = app.import_reads.get(tenant, parsed).value
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        fixes = _corrections(corrected, found.header) if corrected else None
        outcome = app.imports.retry_failed(
            parsed,
            tenant=tenant,
            by=cli_actor(),
            corrections=fixes,
            rows=sorted(fixes) if fixes else None,
        )
    click.echo(f"{len(outcome.passed):,} rows passed, {len(outcome.still_failing):,} still fail")
    for row in outcome.still_failing[:20]:
        click.echo(f"row {row.number}: {describe_errors(row.errors)}")
    sys.exit(EXIT_ROWS_FAILED if outcome.still_failing else 0)


@imports.command("cancel")
@click.argument("import_id")
@click.option("--reason", default="", help="Why (recorded on the import's failure).")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True)
def imports_cancel(import_id: str, reason: str, tenant: str) -> None:
    """Cancel a processing import (its job stops between two chunks)."""
    with open_chronicle() as app:
        parsed = _import_id(import_id)
        app.imports.cancel(parsed, tenant=tenant, by=cli_actor(), reason=reason)
    click.echo(f"import {parsed} cancel requested")
