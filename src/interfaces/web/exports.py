"""`/exports`: the exports of the tenant and one export, with its download link once its
file is written.

Pages read the exports read model only (`chronicle.export_queries`), as the API's list does:
a page view never replays an export's events.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from application.reads.read_your_writes import not_found
from domain.export import ExportStatus
from interfaces.bootstrap import Chronicle
from interfaces.http.dependencies import parse_id
from interfaces.http.exports import ExportId
from interfaces.http.schemas.exports import ExportView, export_view
from interfaces.web.imports import human_size
from interfaces.web.pages import PAGE_OPT, page_context

#: Exports a page of the list shows.
PAGE_SIZE = 50
#: Statuses an export's job may still change.
_MOVING = {ExportStatus.PENDING.value, ExportStatus.RUNNING.value}


def _moving(items: list[ExportView]) -> bool:
    return any(item.status in _MOVING for item in items)


class ExportPages(Controller):
    """The exports list and one export."""

    include_in_schema = False
    opt = PAGE_OPT

    @get("/exports", sync_to_thread=True)
    def list_exports(
        self,
        request: Request[Any, Any, Any],
        cursor: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        rows, next_cursor = chronicle.export_queries.list_exports(
            request.state.tenant, limit=PAGE_SIZE, cursor=cursor or None
        )
        retention = chronicle.exports.retention
        items = [export_view(row, retention) for row in rows]
        return Template(
            "exports/list.html",
            context=page_context(
                request,
                items=items,
                next_cursor=next_cursor,
                moving=_moving(items),
                human_size=human_size,
            ),
        )

    @get("/exports/{export_id:str}", sync_to_thread=True)
    def show_export(self, request: Request[Any, Any, Any], export_id: ExportId) -> Template:
        chronicle: Chronicle = request.app.state.chronicle
        parsed = parse_id(export_id, "export")
        row = chronicle.export_queries.get_export(request.state.tenant, parsed)
        if row is None:
            raise not_found("export", parsed)
        item = export_view(row, chronicle.exports.retention)
        return Template(
            "exports/detail.html",
            context=page_context(
                request,
                item=item,
                moving=_moving([item]),
                job_href=f"/jobs/{item.job_id}" if item.job_id else None,
                human_size=human_size,
            ),
        )


PAGES = [ExportPages]
