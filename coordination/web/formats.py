"""How the dashboard and the CLI write times, durations and counts: one format each, everywhere.

Dates are ``2025-01-31 14:05:09`` in the site's time zone (UTC unless configured), inside a ``<time>``
element carrying the ISO value; durations are ``850 ms``, ``12.4 s``, ``3 min 05 s`` or ``1 h 02 min``. The
browser's elapsed timers (static/dagmerge-ticket.js) write durations the same way.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from django.utils import timezone

DATETIME = "%Y-%m-%d %H:%M:%S"


def stamp(value: datetime | None) -> str:
    """The one date format, as text ("" for no date)."""
    return timezone.localtime(value).strftime(DATETIME) if value else ""


def when(value: datetime | None, empty: str = "—") -> str:
    """The one date format as HTML: ``<time datetime="ISO">2025-01-31 14:05:09</time>``."""
    if not value:
        return empty
    return f'<time datetime="{value.isoformat()}">{stamp(value)}</time>'


def duration(seconds: float | None) -> str:
    """A duration for people: ms under a second, tenths under a minute, then minutes and hours."""
    if seconds is None:
        return ""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def between(start: datetime | None, end: datetime | None) -> str:
    return duration((end - start).total_seconds()) if start and end else ""


def elapsed(start: datetime, now: datetime | None = None) -> str:
    """A live timer: the time so far, which the browser keeps counting from ``data-since``."""
    so_far = ((now or timezone.now()) - start).total_seconds()
    return (f'<time class="elapsed" data-since="{escape(start.isoformat())}" '
            f'title="running since {stamp(start)}">{duration(so_far)}</time>')


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 task``, ``2 tasks``, ``0 tasks``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"
