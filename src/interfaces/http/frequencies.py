"""`/api/frequencies`: the frequency helpers, and a preview of a frequency's next runs."""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from application.frequencies import HELPERS_CATALOGUE, MAX_PREVIEW, preview
from application.schedules import build_frequency
from domain.principals import Action
from interfaces.bootstrap import Chronicle
from interfaces.http.auth import ACTION
from interfaces.http.errors import error_responses
from interfaces.http.schemas.frequencies import FrequencyPreview, HelperEntry, PreviewFrequency

_CATALOGUE = msgspec.convert(HELPERS_CATALOGUE, list[HelperEntry])


class FrequencyController(Controller):
    """Frequencies: helpers that build cron expressions, and previews."""

    path = "/api/frequencies"
    tags = ["frequencies"]

    @get(
        "/",
        operation_id="listFrequencyHelpers",
        summary="Frequency helpers",
        description=(
            "Every helper a schedule's `helpers` chain may use (Laravel-style: `dailyAt`, "
            "`weekdays`, `between`, ...), with its parameters and a worked example. Helpers "
            "apply in order, each setting only its own cron fields."
        ),
        sync_to_thread=False,
    )
    def catalogue(self) -> list[HelperEntry]:
        return _CATALOGUE

    @post(
        "/preview",
        opt={ACTION: Action.READ},
        operation_id="previewFrequency",
        summary="Preview a frequency",
        description=(
            "The canonical cron expression of `expression` or `helpers`, its description in "
            f"English and the next `count` (1 to {MAX_PREVIEW}) runs from now in `timezone`, "
            "with DST notes: `skipped: dst_gap` for a slot that does not exist, `dst` for a run "
            "moved past the gap or in the repeated hour."
        ),
        status_code=200,
        sync_to_thread=True,
        responses=error_responses(400, 413, 422),
    )
    def preview(
        self, *, data: JSONBody[PreviewFrequency], chronicle: NamedDependency[Chronicle]
    ) -> FrequencyPreview:
        frequency = build_frequency(
            data.expression,
            None if data.helpers is None else [msgspec.structs.asdict(h) for h in data.helpers],
            chronicle.cron,
        )
        result = preview(
            frequency, data.timezone, data.count, chronicle.clock.now(), chronicle.cron
        )
        return msgspec.convert(result, FrequencyPreview)
