"""Small conversions shared by the models' ``as_dict()``: JSON-ready values."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the UTC offset (``2030-05-01T09:00:00+02:00``), or None."""
    return None if value is None else value.isoformat()


def text(value: uuid.UUID | None) -> str | None:
    """A UUID as its canonical string, or None."""
    return None if value is None else str(value)


def span(record: Any) -> tuple[str | None, str | None]:
    """Local ``(start, end)`` of a reservation or blocker with a span, the end
    exclusive (the stored end plus its microsecond); ``(None, None)`` for a
    group target."""
    if record.start is None or record.end is None:
        return None, None
    zone = record.timezone or 'UTC'
    return iso(record.display_start(zone)), iso(record.display_end(zone))
