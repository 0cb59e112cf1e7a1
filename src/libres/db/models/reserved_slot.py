"""The rows that make double booking impossible: one per (resource, start)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import CheckConstraint, ColumnElement, Enum, ForeignKey, Index, and_, false, func, or_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from libres.db.models.base import ORMBase, assign_keywords
from libres.db.models.timestamp import TimestampMixin
from libres.modules import errors
from libres.modules.dates import to_timezone
from libres.modules.rasterizer import rasterize_end, rasterize_start

if TYPE_CHECKING:
    from libres.db.models.allocation import Allocation

SourceType = Literal['reservation', 'blocker']
SlotKind = Literal['booking', 'hold', 'buffer']


class ReservedSlot(TimestampMixin, ORMBase):
    """A booked raster slot (or the whole span of a whole-only allocation)."""

    __tablename__ = 'reserved_slots'

    resource: Mapped[uuid.UUID] = mapped_column(primary_key=True, autoincrement=False)
    start: Mapped[datetime] = mapped_column(primary_key=True, autoincrement=False)
    end: Mapped[datetime] = mapped_column(index=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey('allocations.id'), index=True)
    allocation: Mapped[Allocation] = relationship(
        back_populates='reserved_slots',
        primaryjoin='Allocation.id == ReservedSlot.allocation_id',
    )
    source_type: Mapped[SourceType] = mapped_column(
        Enum('reservation', 'blocker', name='reserved_slot_source_type'),
        index=True,
    )
    reservation_token: Mapped[uuid.UUID]
    source_id: Mapped[int] = mapped_column(index=True)
    # A hold of a pending reservation takes its spot until then; after that
    # it blocks nobody (``blocks``), and whoever books over it removes it.
    held_until: Mapped[datetime | None] = mapped_column(default=None)
    # Time kept free around a booking (``Allocation.buffer_before/after``):
    # it blocks like a booking but is never counted as booked time.
    buffer: Mapped[bool] = mapped_column(default=False, server_default=false())

    # Deleting a reservation or blocker deletes its slots in the database;
    # a host deleting those slot objects afterwards matches no row, which
    # is fine, not a warning.
    __mapper_args__ = {'confirm_deleted_rows': False}

    __table_args__ = (
        Index('reservation_resource_ix', 'reservation_token', 'resource'),
        CheckConstraint('start <= "end"', name='reserved_slots_start_before_end'),
        CheckConstraint(
            "held_until IS NULL AND NOT buffer OR source_type = 'reservation'",
            name='reserved_slots_holds_and_buffers_of_reservations',
        ),
    )

    def __init__(self, **kwargs: Any) -> None:
        assign_keywords(self, kwargs)

    @property
    def kind(self) -> SlotKind:
        """'buffer' (time kept free around a booking, held or not), 'hold'
        (a pending reservation's spot, see ``held_until``) or 'booking'."""
        if self.buffer:
            return 'buffer'
        return 'booking' if self.held_until is None else 'hold'

    # The two rules of slot kinds, each in its Python form and its SQL form
    # (raw SQL texts write ``blocks`` as ``held_until IS NULL OR held_until > :now``).

    def blocks(self, now: datetime) -> bool:
        """Whether the slot keeps others off its spot at ``now``: all but an expired hold."""
        return self.held_until is None or self.held_until > now

    @classmethod
    def blocking_at(cls, now: Any) -> ColumnElement[bool]:
        """``blocks`` in SQL (``now`` a value or a bind parameter)."""
        return or_(cls.held_until.is_(None), cls.held_until > now)

    def is_booked_time(self, now: datetime) -> bool:
        """Whether availability counts the slot as booked: a blocking slot that is no buffer."""
        return not self.buffer and self.blocks(now)

    @classmethod
    def booked_time_at(cls, now: Any) -> ColumnElement[bool]:
        """``is_booked_time`` in SQL."""
        return and_(cls.buffer.is_(False), cls.blocking_at(now))

    def display_start(self, timezone: str | tzinfo | None = None) -> datetime:
        start = rasterize_start(self.start, self.allocation.raster)
        return to_timezone(start, timezone or self._timezone())

    def display_end(self, timezone: str | tzinfo | None = None) -> datetime:
        end = rasterize_end(self.end, self.allocation.raster)
        return to_timezone(end + timedelta(microseconds=1), timezone or self._timezone())

    def _timezone(self) -> str:
        zone = self.allocation.timezone
        if zone is None:
            raise errors.LibresAssertionError('the allocation of this slot has no timezone')
        return zone

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ReservedSlot)
            and self.start == other.start
            and str(self.resource) == str(other.resource)
        )

    # Identity hash on purpose: slots are kept in sets while being built.
    def __hash__(self) -> int:
        return id(self)


# Blocking-resource look-ups ask which slots cover a time; GiST answers that.
Index(
    'start_end_tsrange_ix',
    func.tsrange(ReservedSlot.start, ReservedSlot.end),
    postgresql_using='gist',
)
