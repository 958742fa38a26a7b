"""How the pages write times, durations and counts (Jinja filters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def iso(moment: datetime | None) -> str:
    """An instant as ISO 8601 in UTC (the `datetime` attribute of `<time>`; the browser shows
    it in the viewer's zone)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utc_text(moment: datetime | None) -> str:
    """An instant as the server writes it, before the browser shows it in the viewer's zone:
    `2026-12-07 23:41:05 UTC`."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(value: float | timedelta | None) -> str:
    """Seconds (or a timedelta) as `850 ms`, `12.4 s`, `3 min 05 s`, `2 h 07 min`, `3 d 4 h`."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def ms(value: float | None) -> str:
    return "—" if value is None else duration(value / 1000)


def count(value: int | None) -> str:
    """A count with thin thousands separators: `12 345`."""
    return "—" if value is None else f"{value:,}".replace(",", "\u202f")


FILTERS: dict[str, Any] = {
    "iso": iso,
    "utc": utc_text,
    "duration": duration,
    "ms": ms,
    "count": count,
}
