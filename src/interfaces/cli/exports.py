"""`chronicle export` (write an export's file here and now) and `chronicle exports`."""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import UUID

import click
import msgspec

from domain.export import ExportFormat
from domain.shared import DEFAULT_TENANT
from interfaces.cli.common import catch_up_if_embedded, cli_actor, fmt_time, open_chronicle
from interfaces.http.schemas.exports import ExportView, export_view

FORMATS = [item.value for item in ExportFormat]


def _filters(values: tuple[str, ...]) -> dict[str, object]:
    filters: dict[str, object] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(
                f"{item!r} is not NAME=VALUE, e.g. --filter status=failed", param_hint="--filter"
            )
        if name.strip() in filters:
            raise click.BadParameter(
                f"filter {name.strip()!r} is given twice", param_hint="--filter"
            )
        filters[name.strip()] = value
    return filters


def _copy(source: Path, target: Path) -> None:
    # Copied beside the target and renamed, so the target is never half a file.
    partial = target.with_name(target.name + ".part")
    try:
        shutil.copyfile(source, partial)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None


def _format_of(fmt: str | None, output: Path) -> str:
    if fmt is not None:
        return fmt
    return ExportFormat.XLSX.value if output.suffix.lower() == ".xlsx" else ExportFormat.CSV.value


@click.command("export")
@click.argument("exporter")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="csv or xlsx (default: from the output file's extension, else csv).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="The file to write.",
)
@click.option(
    "--filter",
    "filter_values",
    multiple=True,
    metavar="NAME=VALUE",
    help="A filter of the exporter (repeatable); `chronicle exports exporters` lists them.",
)
def export(exporter: str, fmt: str | None, output: Path, filter_values: tuple[str, ...]) -> None:
    """Export EXPORTER's rows to a file, written in this process (no worker needed).

    The export is recorded like one requested through the API, and its file stays
    downloadable there until the retention removes it.

    \b
    Example:
      chronicle export failed-jobs --format xlsx -o failed.xlsx --filter queue=high
    """
    filters = _filters(filter_values)
    with open_chronicle() as app:
        requested = app.exports.request(
            exporter,
            _format_of(fmt, output),
            filters,
            tenant=DEFAULT_TENANT,
            by=cli_actor(),
            dispatch=False,
        )
        # Exporters read read models: on the embedded store nothing else may be updating them.
        catch_up_if_embedded(app)
        try:
            outcome = app.exports.run(requested.id)
        except Exception as exc:
            export = app.export_reads.get(DEFAULT_TENANT, requested.id).value
            failure = export.failure or str(exc)
            raise click.ClickException(f"export {requested.id} failed: {failure}") from None
        found = app.exports.download(requested.id, tenant=DEFAULT_TENANT)
        _copy(found.path, output)
    click.echo(
        f"exported {outcome.rows} row(s), {outcome.size} bytes, to {output} (export {requested.id})"
    )


def _print(view: ExportView) -> None:
    click.echo(f"{'id':>14}: {view.id}")
    click.echo(f"{'exporter':>14}: {view.exporter} ({view.format})")
    if view.filters:
        shown = ", ".join(f"{name}={value}" for name, value in view.filters.items())
        click.echo(f"{'filters':>14}: {shown}")
    click.echo(f"{'status':>14}: {view.status}")
    click.echo(f"{'requested':>14}: {fmt_time(view.requested_at)} by {view.requested_by}")
    if view.started_at:
        click.echo(f"{'started':>14}: {fmt_time(view.started_at)} (attempt {view.attempts})")
    if view.finished_at:
        click.echo(f"{'finished':>14}: {fmt_time(view.finished_at)}")
    if view.rows is not None:
        click.echo(f"{'file':>14}: {view.rows} row(s), {view.size} bytes ({view.file_name})")
    if view.expires_at:
        click.echo(f"{'expires':>14}: {fmt_time(view.expires_at)}")
    if view.failure:
        click.echo(f"{'failure':>14}: {view.failure}")
    if view.expired_at:
        click.echo(
            f"{'expired':>14}: {fmt_time(view.expired_at)} (file removed after"
            f" {view.retention_hours:g} hours)"
        )
    if view.job_id:
        click.echo(f"{'job':>14}: {view.job_id}")


@click.group()
def exports() -> None:
    """Exports: list, show, download their files, and the exporters there are."""


@exports.command("list")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (as the API answers).")
def exports_list(limit: int, cursor: str | None, as_json: bool) -> None:
    """List exports, newest first."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        rows, next_cursor = app.export_queries.list_exports(
            DEFAULT_TENANT, limit=limit, cursor=cursor
        )
        views = [export_view(row, app.exports.retention) for row in rows]
    if as_json:
        for view in views:
            click.echo(msgspec.json.encode(view).decode())
    else:
        click.echo(f"{'id':<38}{'exporter':<20}{'format':<8}{'status':<11}{'rows':>9}  requested")
        for view in views:
            rows_text = "-" if view.rows is None else str(view.rows)
            click.echo(
                f"{view.id!s:<38}{view.exporter:<20}{view.format:<8}{view.status:<11}"
                f"{rows_text:>9}  {fmt_time(view.requested_at)}"
            )
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}", err=True)


@exports.command("show")
@click.argument("export_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as the API answers).")
def exports_show(export_id: UUID, as_json: bool) -> None:
    """Show one export: status, rows, size, and when its file expires."""
    with open_chronicle() as app:
        catch_up_if_embedded(app)
        current = app.export_reads.get(DEFAULT_TENANT, export_id)
        view = export_view(current.value, app.exports.retention, projected=current.projected)
    if as_json:
        click.echo(msgspec.json.encode(view).decode())
    else:
        _print(view)


@exports.command("download")
@click.argument("export_id", type=click.UUID)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="The file to write.",
)
def exports_download(export_id: UUID, output: Path) -> None:
    """Copy the file of a completed export to OUTPUT."""
    with open_chronicle() as app:
        found = app.exports.download(export_id, tenant=DEFAULT_TENANT)
        _copy(found.path, output)
    click.echo(f"{found.size} bytes to {output}")


@exports.command("exporters")
def exports_exporters() -> None:
    """List the exporters with their columns and filters."""
    with open_chronicle() as app:
        for item in app.exporters.exporters():
            click.echo(f"{item.name}: {item.description}")
            click.echo(f"    columns: {', '.join(column.name for column in item.columns)}")
            for spec in item.filters:
                choices = f" ({'|'.join(spec.choices)})" if spec.choices else ""
                required = ", required" if spec.required else ""
                click.echo(f"    --filter {spec.name}=<{spec.type}{required}>{choices} {spec.help}")
