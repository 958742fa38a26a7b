"""`chronicle projections status|rebuild`: inspect and rebuild the read models."""

from __future__ import annotations

import json
from typing import Any

import click

from interfaces.bootstrap import OUTBOX, PROJECTIONS, READ_MODELS
from interfaces.cli.common import open_chronicle


@click.group()
def projections() -> None:
    """Inspect and rebuild read models."""


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines, one per projection.")
def projections_status(as_json: bool) -> None:
    """Position, head and lag of each projection."""
    with open_chronicle() as app:
        head = app.log.head()
        tracking = app.queries.tracking()
        rows = [
            {
                "name": name,
                "position": tracking.get(name, 0),
                "head": head,
                "lag": head - tracking.get(name, 0),
            }
            for name in (*(model.name for model in READ_MODELS), OUTBOX)
        ]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    click.echo(f"{'projection':<16}{'position':>12}{'head':>12}{'lag':>10}")
    for row in rows:
        click.echo(f"{row['name']:<16}{row['position']:>12}{row['head']:>12}{row['lag']:>10}")


@projections.command("rebuild")
@click.argument("name", required=False, type=click.Choice(PROJECTIONS))
def projections_rebuild(name: str | None) -> None:
    """Replay the log from zero into new tables, then swap them in (all when NAME is omitted).

    The live read model keeps serving until the rebuilt one replaces it.
    """
    with open_chronicle() as app:
        for projection in [name] if name else list(PROJECTIONS):
            runner = app.runners[projection]
            total = max(app.log.head(), 1)
            with click.progressbar(length=total, label=f"rebuilding {projection}") as bar:
                done = [0]

                def progress(
                    position: int, head: int, bar: Any = bar, done: list[int] = done
                ) -> None:
                    bar.length = max(head, 1)
                    bar.update(position - done[0])
                    done[0] = position

                position = runner.rebuild(progress)
            click.echo(f"{projection}: rebuilt up to position {position}")
