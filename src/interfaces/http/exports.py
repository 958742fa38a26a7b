"""`/api/exports` and `/api/exporters`: request exports, follow them, download their files."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import File

from domain.export import ExportFormat
from domain.principals import Action
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION
from interfaces.http.dependencies import Caller, parse_id
from interfaces.http.errors import error_responses
from interfaces.http.jobs import MAX_LIMIT, Cursor, Limit, id_path
from interfaces.http.schemas.exports import (
    MEDIA_TYPES,
    ExporterView,
    ExportPage,
    ExportView,
    RequestExport,
    export_path,
    export_view,
    exporter_view,
)

ExportId = Annotated[str, id_path("export")]


def _view(
    chronicle: Chronicle, export_id: UUID, tenant: str, *, at_least: int | None = None
) -> ExportView:
    current = chronicle.export_reads.get(tenant, export_id, at_least=at_least)
    return export_view(current.value, chronicle.exports.retention, projected=current.projected)


class ExportController(Controller):
    """Exports of the caller's tenant."""

    path = "/api/exports"
    tags = ["exports"]

    @post(
        "/",
        opt={ACTION: Action.EXPORT},
        operation_id="requestExport",
        summary="Request an export",
        description=(
            "Records the export and dispatches the job that writes its file (queue `default`),"
            " in one transaction. An unknown exporter, format or filter, or a filter value of"
            " the wrong type, is a 422 that names it. Follow the export with"
            " `GET /api/exports/{id}`; once `completed`, download its file."
        ),
        status_code=202,
        sync_to_thread=True,
        response_headers=[
            ResponseHeader(
                name="Location", description="The new export's URL.", documentation_only=True
            )
        ],
        responses=error_responses(400, 413, 422),
    )
    def request_export(
        self,
        *,
        data: JSONBody[RequestExport],
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> Response[ExportView]:
        export = chronicle.exports.request(
            data.exporter, data.format, data.filters, tenant=caller.tenant, by=caller.user
        )
        body = _view(chronicle, export.id, caller.tenant, at_least=export.version)
        return Response(body, status_code=202, headers={"Location": export_path(export.id)})

    @get(
        "/",
        operation_id="listExports",
        summary="List exports",
        description=f"Newest first, with their status. At most {MAX_LIMIT} a page.",
        sync_to_thread=True,
        responses=error_responses(400, 422),
    )
    def list_exports(
        self,
        *,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ExportPage:
        rows, next_cursor = chronicle.export_queries.list_exports(
            caller.tenant, limit=limit, cursor=cursor
        )
        retention = chronicle.exports.retention
        return ExportPage(
            items=[export_view(row, retention) for row in rows], next_cursor=next_cursor
        )

    @get(
        "/{export_id:str}",
        operation_id="getExport",
        summary="One export",
        description="Its status, rows and file size, and when its file expires.",
        sync_to_thread=True,
        responses=error_responses(400, 404, 422, resource="export"),
    )
    def get_export(
        self,
        *,
        export_id: ExportId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> ExportView:
        return _view(chronicle, parse_id(export_id, "export"), caller.tenant)

    @get(
        "/{export_id:str}/download",
        operation_id="downloadExport",
        summary="Download an export's file",
        description=(
            "The file of a completed export, as an attachment (`text/csv` or the XLSX media"
            " type). 409 while it is pending, running or failed; 410 once the retention"
            " removed it."
        ),
        sync_to_thread=True,
        media_type=MEDIA_TYPES[ExportFormat.CSV],
        responses=error_responses(400, 404, 409, 410, 422, resource="export"),
    )
    def download(
        self,
        *,
        export_id: ExportId,
        chronicle: NamedDependency[Chronicle],
        caller: NamedDependency[Caller],
    ) -> File:
        found = chronicle.exports.download(parse_id(export_id, "export"), tenant=caller.tenant)
        return File(
            path=found.path,
            filename=found.filename,
            media_type=MEDIA_TYPES[found.format],
            content_disposition_type="attachment",
        )


class ExporterController(Controller):
    """The exporters this Chronicle offers."""

    path = "/api/exporters"
    tags = ["exports"]

    @get(
        "/",
        operation_id="listExporters",
        summary="List exporters",
        description="Every registered exporter with its columns and the filters it takes.",
        sync_to_thread=False,
    )
    def list_exporters(self, *, chronicle: NamedDependency[Chronicle]) -> list[ExporterView]:
        return [exporter_view(exporter) for exporter in chronicle.exporters.exporters()]
