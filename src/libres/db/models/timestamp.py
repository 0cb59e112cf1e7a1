"""``created`` / ``modified`` columns shared by every table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from libres.modules.dates import utcnow


class TimestampMixin:
    """Adds ``created`` (set on insert) and ``modified`` (set on update)."""

    @staticmethod
    def timestamp() -> datetime:
        return utcnow()

    # Deferred: listings rarely need them, and the cart expiry reads them in SQL.
    created: Mapped[datetime] = mapped_column(default=utcnow, deferred=True)
    modified: Mapped[datetime | None] = mapped_column(onupdate=utcnow, deferred=True)
