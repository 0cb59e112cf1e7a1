"""The ``allocation_rules`` table: one recurring availability of one resource."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, Date, DateTime, Index, Interval, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from libres.db.models.base import ORMBase
from libres.db.models.timestamp import TimestampMixin

if TYPE_CHECKING:
    from libres.db.rules.extension import Extension


class AllocationRule(TimestampMixin, ORMBase):
    """A recurrence (RFC 5545 ``RRULE``) that makes allocations of a resource.

    ``start`` and ``end`` are the first occurrence in naive local time of
    ``timezone``; every occurrence repeats that wall-clock time. The row also
    names the context and scheduler it belongs to, so a cron job can rebuild
    the scheduler from the database alone. Allocations exist up to
    ``generated_until`` (naive local, exclusive): everything before it was
    made or skipped once and is never made again.
    """

    __tablename__ = 'allocation_rules'

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    resource: Mapped[uuid.UUID] = mapped_column()
    context: Mapped[str] = mapped_column(Text)
    scheduler: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(Text)
    rrule: Mapped[str] = mapped_column(Text)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    whole_day: Mapped[bool] = mapped_column(default=False)
    quota: Mapped[int] = mapped_column(default=1)
    quota_limit: Mapped[int] = mapped_column(default=0)
    partly_available: Mapped[bool] = mapped_column(default=False)
    raster: Mapped[int] = mapped_column(default=5)
    approve_manually: Mapped[bool] = mapped_column(default=False)
    # The booking policies every allocation of the rule gets (see Allocation).
    buffer_before: Mapped[timedelta | None] = mapped_column(Interval, default=None)
    buffer_after: Mapped[timedelta | None] = mapped_column(Interval, default=None)
    min_notice: Mapped[timedelta | None] = mapped_column(Interval, default=None)
    max_advance: Mapped[timedelta | None] = mapped_column(Interval, default=None)
    data: Mapped[dict[str, Any] | None] = mapped_column()
    exceptions: Mapped[list[date]] = mapped_column(ARRAY(Date), default=list)
    horizon: Mapped[timedelta] = mapped_column(Interval)
    generated_until: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    stopped: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        Index('allocation_rules_resource_ix', 'resource'),
        CheckConstraint('start < "end"', name='allocation_rules_start_before_end'),
        CheckConstraint('quota >= 1', name='allocation_rules_quota_positive'),
        CheckConstraint('quota_limit >= 0', name='allocation_rules_quota_limit_not_negative'),
        CheckConstraint('raster IN (5, 10, 15, 30, 60)', name='allocation_rules_valid_raster'),
        CheckConstraint(
            "horizon > interval '0' AND horizon <= interval '3653 days'",
            name='allocation_rules_horizon_range',
        ),
    )

    @property
    def last_extension(self) -> Extension | None:
        """What the last extension of this rule in this process made (not stored)."""
        return self.__dict__.get('_last_extension')

    @last_extension.setter
    def last_extension(self, value: Extension) -> None:
        self.__dict__['_last_extension'] = value

    @property
    def hex(self) -> str:
        """The id as allocations carry it in ``data['rule']``."""
        return self.id.hex

    def __repr__(self) -> str:
        return f'<AllocationRule {self.hex} {self.rrule!r} from {self.start:%Y-%m-%d %H:%M}>'
