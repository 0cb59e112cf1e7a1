"""Allocations: the spans of time that may be reserved."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, Index, Interval, Text, UniqueConstraint, column, func, select
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, Query, mapped_column, object_session, relationship
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql import ColumnElement

from libres.db.models.base import ORMBase, assign_keywords
from libres.db.models.json_ready import iso, text
from libres.db.models.other import OtherModels
from libres.db.models.reserved_slot import ReservedSlot
from libres.db.models.timestamp import TimestampMixin
from libres.modules import clock, errors
from libres.modules.dates import (
    get_timezone,
    is_whole_day,
    localize,
    standardize_date,
    to_timezone,
)
from libres.modules.rasterizer import (
    MIN_RASTER,
    iterate_span,
    rasterize_end,
    rasterize_span,
    rasterize_start,
)
from libres.modules.utils import generate_uuids

if TYPE_CHECKING:
    from libres.db.models.reservation import Reservation

ONE_MICROSECOND = timedelta(microseconds=1)

# An imaginary slot stands for the hour a spring DST change removes.
ImaginarySlot = tuple[None, None]
Slot = tuple[datetime, datetime]


class Allocation(TimestampMixin, ORMBase, OtherModels):
    """A span of time on a resource that may be reserved ``quota`` times.

    The row whose ``resource`` equals ``mirror_of`` is the master; mirrors
    (one per extra unit of quota) share its start and end under derived
    resource UUIDs and are only written once something is booked on them.
    """

    __tablename__ = 'allocations'

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resource: Mapped[uuid.UUID] = mapped_column(index=True)
    type: Mapped[str] = mapped_column(Text, default='generic', index=True)
    mirror_of: Mapped[uuid.UUID] = mapped_column(index=True)
    group: Mapped[uuid.UUID] = mapped_column(index=True)
    quota: Mapped[int] = mapped_column(default=1)
    quota_limit: Mapped[int] = mapped_column(default=0)
    partly_available: Mapped[bool] = mapped_column(default=False)
    approve_manually: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str | None]
    data: Mapped[dict[str, Any] | None]
    _start: Mapped[datetime] = mapped_column()
    _end: Mapped[datetime] = mapped_column()
    _raster: Mapped[int] = mapped_column()
    # Booking policies (None: none, as in libres 1.4.0). Buffers are kept
    # free before and after each booking of a partly available allocation;
    # a booking must start at least ``min_notice`` and at most
    # ``max_advance`` from now (``libres.db.booking.policies``).
    buffer_before: Mapped[timedelta | None] = mapped_column(Interval, default=None)
    buffer_after: Mapped[timedelta | None] = mapped_column(Interval, default=None)
    min_notice: Mapped[timedelta | None] = mapped_column(Interval, default=None)
    max_advance: Mapped[timedelta | None] = mapped_column(Interval, default=None)

    reserved_slots: Mapped[list[ReservedSlot]] = relationship(
        back_populates='allocation',
        primaryjoin='Allocation.id == ReservedSlot.allocation_id',
        lazy='selectin',
        cascade='all, delete-orphan',
    )

    __table_args__ = (
        UniqueConstraint('resource', '_start', name='resource_start_ix'),
        Index('mirror_resource_ix', 'mirror_of', 'resource'),
        Index('ix_allocations_start', '_start'),
        Index('ix_allocations_end', '_end'),
        CheckConstraint('_start <= _end', name='allocations_start_before_end'),
        CheckConstraint('quota >= 1', name='allocations_quota_positive'),
        CheckConstraint('quota_limit >= 0', name='allocations_quota_limit_not_negative'),
        CheckConstraint('_raster IN (5, 10, 15, 30, 60)', name='allocations_valid_raster'),
        CheckConstraint(
            "buffer_before >= interval '0' AND buffer_after >= interval '0'"
            " AND min_notice >= interval '0' AND max_advance > interval '0'"
            ' AND min_notice <= max_advance',
            name='allocations_policies_in_range',
        ),
        # Mirror n of every master shares one resource, so per resource no
        # two rows may overlap: masters and mirrors alike.
        ExcludeConstraint(
            ('resource', '='),
            (func.tsrange(column('_start'), column('_end'), '[]'), '&&'),
            name='allocations_no_overlap',
            using='gist',
            deferrable=True,
            initially='IMMEDIATE',
        ),
    )

    __mapper_args__ = {
        'polymorphic_on': 'type',
        'polymorphic_identity': 'generic',
    }

    def __init__(
        self,
        resource: uuid.UUID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        raster: int | None = None,
        timezone: str | None = None,
        quota: int = 1,
        quota_limit: int = 0,
        partly_available: bool = False,
        approve_manually: bool = False,
        **kwargs: Any,
    ) -> None:
        # Zone and raster first: a naive start needs the zone, and the raster
        # decides how start and end are rounded.
        self.timezone = timezone
        if raster is not None:
            self.set_raster(raster)
        if resource is not None:
            self.resource = resource
        if start is not None:
            self.start = start
        if end is not None:
            self.end = end
        self.quota = quota
        self.quota_limit = quota_limit
        self.partly_available = partly_available
        self.approve_manually = approve_manually
        assign_keywords(self, kwargs)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Allocation)
            and self.resource == other.resource
            and self._start == other._start
        )

    # Identity hash on purpose (kept from the original): allocations are used
    # in sets while their start may still change.
    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return (
            f'<Allocation id={self.id} resource={self.resource} '
            f'start={self._start} end={self._end} quota={self.quota}>'
        )

    def as_dict(self) -> dict[str, Any]:
        """The allocation as JSON-ready values, with these keys:

        ``id`` (int), ``resource``, ``mirror_of``, ``group`` (UUID strings),
        ``type``, ``timezone`` (str), ``start``/``end`` (ISO 8601 in the
        allocation's zone with offset; ``end`` exclusive, without the stored
        microsecond), ``raster`` (minutes), ``quota``, ``quota_limit`` (ints),
        ``partly_available``, ``approve_manually``, ``whole_day``,
        ``is_master`` (bools), ``data`` (dict or None).
        """
        zone = self.timezone or 'UTC'
        return {
            'id': self.id,
            'resource': text(self.resource),
            'mirror_of': text(self.mirror_of),
            'group': text(self.group),
            'type': self.type,
            'timezone': self.timezone,
            'start': iso(self.display_start(zone)),
            'end': iso(self.display_end(zone)),
            'raster': self._raster,
            'quota': self.quota,
            'quota_limit': self.quota_limit,
            'partly_available': bool(self.partly_available),
            'approve_manually': bool(self.approve_manually),
            'whole_day': is_whole_day(self.display_start(zone), self.display_end(zone), zone),
            'is_master': bool(self.resource == self.mirror_of),
            'data': self.data,
        }

    # --- start, end, raster -------------------------------------------------

    def get_raster(self) -> int:
        return self._raster

    def set_raster(self, raster: int) -> None:
        if self._raster is not None:
            raise errors.LibresAssertionError('the raster of an allocation can be set only once')
        self._raster = raster
        if self._start is not None:
            self._start = rasterize_start(self._start, raster)
        if self._end is not None:
            self._end = rasterize_end(self._end, raster)

    raster = property(get_raster, set_raster)

    def _localized(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            if not self.timezone:
                raise errors.LibresAssertionError('a naive datetime needs the allocation timezone')
            return localize(value, get_timezone(self.timezone))
        return value

    def get_start(self) -> datetime:
        return self._start

    def set_start(self, start: datetime) -> None:
        self._start = rasterize_start(self._localized(start), self._raster or MIN_RASTER)

    start = property(get_start, set_start)

    def get_end(self) -> datetime:
        return self._end

    def set_end(self, end: datetime) -> None:
        self._end = rasterize_end(self._localized(end), self._raster or MIN_RASTER)

    end = property(get_end, set_end)

    def _prepare(self, value: datetime) -> datetime:
        """An aware UTC datetime; naive values are in the allocation's zone."""
        if value.tzinfo is None and not self.timezone:
            raise errors.LibresAssertionError('a naive datetime needs the allocation timezone')
        return standardize_date(value, self.timezone or 'UTC')

    # --- display and ranges -------------------------------------------------

    def _zone(self, timezone: str | tzinfo | None) -> str | tzinfo:
        zone = timezone or self.timezone
        if zone is None:
            raise errors.LibresAssertionError('the allocation has no timezone')
        return zone

    def display_start(self, timezone: str | tzinfo | None = None) -> datetime:
        return to_timezone(self.start, self._zone(timezone))

    def display_end(self, timezone: str | tzinfo | None = None) -> datetime:
        return to_timezone(self.end + ONE_MICROSECOND, self._zone(timezone))

    @property
    def whole_day(self) -> bool:
        start, end = self.display_start(), self.display_end()
        if start == end:
            raise errors.LibresAssertionError('an allocation needs a start and a different end')
        return is_whole_day(start, end, self._zone(None))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        start, end = rasterize_span(self._prepare(start), self._prepare(end), self.raster)
        return bool(self.start <= start <= self.end or start <= self.start <= end)

    def contains(self, start: datetime, end: datetime) -> bool:
        start, end = rasterize_span(self._prepare(start), self._prepare(end), self.raster)
        return bool(self.start <= start and end <= self.end)

    def align_dates(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> tuple[datetime, datetime]:
        start = self.start if start is None else max(self._prepare(start), self.start)
        end = self.end if end is None else min(self._prepare(end), self.end)
        return start, end

    def all_slots(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[Slot]:
        if not self.partly_available:
            yield self.start, self.end
            return
        start, end = self.align_dates(start, end)
        yield from iterate_span(start, end, self.raster)

    def free_slots(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[Slot]:
        taken = self._reserved_starts()
        return [slot for slot in self.all_slots(start, end) if slot[0] not in taken]

    def count_slots(self, start: datetime | None = None, end: datetime | None = None) -> int:
        if not self.partly_available:
            return 1
        start, end = self.align_dates(start, end)
        seconds = (end + ONE_MICROSECOND - start).total_seconds()
        return int(seconds // (self.raster * 60))

    def is_available(self, start: datetime | None = None, end: datetime | None = None) -> bool:
        if start is None or end is None:
            start, end = self.start, self.end
        elif not self.overlaps(start, end):
            raise errors.LibresAssertionError('the range does not overlap the allocation')
        from libres.db.booking.spots import is_free

        return is_free(self, start, end, self._reserved_starts())

    def _reserved_starts(self) -> set[datetime]:
        """Starts of the slots that keep others off this spot now (all but expired holds)."""
        slots = self.reserved_slots
        if not any(slot.held_until is not None for slot in slots):
            return {slot.start for slot in slots}
        now = clock.now()
        return {slot.start for slot in slots if slot.blocks(now)}

    def _booked_slots(self) -> list[ReservedSlot]:
        """The slots availability counts as booked: no buffers, no expired holds."""
        slots = self.reserved_slots
        if not any(slot.held_until is not None or slot.buffer for slot in slots):
            return slots
        now = clock.now()
        return [slot for slot in slots if slot.is_booked_time(now)]

    def limit_timespan(
        self,
        start: time,
        end: time,
        timezone: str | tzinfo | None = None,
        is_dst: bool = False,
        raise_non_existent: bool = False,
        raise_ambiguous: bool = False,
    ) -> tuple[datetime, datetime]:
        """Clamp a time-of-day window to the allocation, on its first day."""
        zone = self._zone(timezone)
        own_start, own_end = self.display_start(zone), self.display_end(zone)
        if not self.partly_available:
            return own_start, own_end

        def local(day: Any, at: time) -> datetime:
            return localize(
                datetime.combine(day, at),
                get_timezone(zone),
                is_dst=is_dst,
                raise_non_existent=raise_non_existent,
                raise_ambiguous=raise_ambiguous,
            )

        day = own_start.date()
        start_dt, end_dt = local(day, start), local(day, end)
        if end_dt < start_dt:
            end_dt = local(day + timedelta(days=1), end)
        if own_end < end_dt:
            end_dt = own_end
        if own_start > start_dt:
            start_dt = own_start
        start_dt = rasterize_start(start_dt, self.raster)
        end_dt = rasterize_end(end_dt, self.raster)
        return start_dt, end_dt + ONE_MICROSECOND

    # --- availability -------------------------------------------------------

    @staticmethod
    def _percentage(total: int, blocked: int, reserved: int) -> float:
        if total == blocked:
            return 0.0
        total -= blocked
        if total == reserved:
            return 0.0
        if reserved == 0:
            return 100.0
        return 100.0 - 100.0 * reserved / total

    def _slot_counts(self) -> tuple[int, int]:
        booked = self._booked_slots()
        blocked = sum(1 for s in booked if s.source_type == 'blocker')
        return blocked, len(booked) - blocked

    @property
    def availability(self) -> float:
        """Free share of this row only, in percent; blocked time is not counted."""
        blocked, reserved = self._slot_counts()
        return self._percentage(self.count_slots(), blocked, reserved)

    def _dst_change(self) -> bool:
        return self.display_start().tzname() != self.display_end().tzname()

    def _naive_local_minutes(self) -> int:
        start, end = self.display_start(), self.display_end()
        naive = end.replace(tzinfo=None) - start.replace(tzinfo=None)
        return int(naive.total_seconds() // 60)

    def _real_minutes(self) -> int:
        return int((self.end + ONE_MICROSECOND - self.start).total_seconds() // 60)

    def _local_two_oclock(self) -> datetime:
        """Local 02:00 of the first day, with the offset the allocation starts
        in: where a spring change skips an hour and an autumn one repeats it."""
        local_start = self.display_start()
        offset = local_start.utcoffset() or timedelta()
        two = local_start.replace(hour=2, minute=0, second=0, microsecond=0, tzinfo=None)
        return (two - offset).replace(tzinfo=UTC)

    @property
    def normalized_availability(self) -> float:
        """Availability as if the day had 24 hours (front-ends draw it so)."""
        if not self.partly_available or not self._dst_change():
            return self.availability
        total = self._naive_local_minutes() // self.raster
        per_hour = 60 // self.raster
        if self._real_minutes() > self._naive_local_minutes():
            begin = self._local_two_oclock()
            end = begin + timedelta(hours=1)
            counted = [s for s in self._booked_slots() if not begin <= s.start < end]
            blocked = sum(1 for s in counted if s.source_type == 'blocker')
            reserved = len(counted) - blocked
        else:
            blocked, reserved = self._slot_counts()
            reserved += per_hour
        return self._percentage(total, blocked, reserved)

    def normalized_slots(self) -> Iterator[Slot | ImaginarySlot]:
        if not self.partly_available or not self._dst_change():
            yield from self.all_slots()
            return
        per_hour = 60 // self.raster
        two_utc = self._local_two_oclock()
        if self._real_minutes() > self._naive_local_minutes():
            skipped = 0
            for slot in self.all_slots():
                if skipped < per_hour and slot[0] >= two_utc:
                    skipped += 1
                    continue
                yield slot
        else:
            inserted = False
            for slot in self.all_slots():
                if not inserted and slot[0] >= two_utc:
                    inserted = True
                    for _ in range(per_hour):
                        yield None, None
                yield slot

    def availability_partitions(self, normalize_dst: bool = True) -> list[tuple[float, bool]]:
        """Blocks of free and reserved time, each with its share in percent."""
        slots: list[Slot | ImaginarySlot]
        booked = self._booked_slots()
        if self.partly_available and normalize_dst:
            if not booked and not self._dst_change():
                return [(100.0, False)]
            slots = list(self.normalized_slots())
        elif not booked:
            return [(100.0, False)]
        else:
            slots = list(self.all_slots())
        taken = {slot.start for slot in booked}
        flags = [slot[0] is None or slot[0] in taken for slot in slots]
        return partition_flags(flags)

    # --- master, mirrors, groups --------------------------------------------

    @hybrid_property
    def is_master(self) -> bool:
        return self.resource == self.mirror_of

    @is_master.inplace.expression
    @classmethod
    def _is_master_expression(cls) -> ColumnElement[bool]:
        return cls.resource == cls.mirror_of

    @property
    def is_transient(self) -> bool:
        from sqlalchemy import inspect

        return bool(inspect(self).transient)

    def _session(self) -> OrmSession:
        session = object_session(self)
        if session is None:
            raise errors.LibresAssertionError('the allocation is not attached to a session')
        return session

    def get_master(self) -> Allocation:
        if self.is_master:
            return self
        return self._session().query(Allocation).filter(
            Allocation._start == self._start,
            Allocation.resource == self.mirror_of,
        ).one()

    def siblings(self, imaginary: bool = True) -> list[Allocation]:
        """The master followed by its mirrors in key order."""
        if not imaginary and self.is_transient:
            raise errors.LibresAssertionError('a transient allocation has no persistent siblings')
        if self.quota == 1:
            if not self.is_master:
                raise errors.LibresAssertionError('an allocation with quota 1 must be a master')
            return [self]
        rows = self._session().scalars(
            select(Allocation).where(
                Allocation.mirror_of == self.mirror_of,
                Allocation._start == self._start,
            )
        ).all()
        by_resource = {row.resource: row for row in rows}
        master = self if self.is_master else by_resource[self.mirror_of]
        result = [master]
        for key in generate_uuids(master.resource, master.quota):
            existing = by_resource.get(key)
            if existing is not None:
                result.append(existing)
            elif imaginary:
                mirror = master.copy()
                mirror.resource = key
                result.append(mirror)
        return result

    def copy(self) -> Allocation:
        clone = type(self)()
        for name in (
            'resource', 'mirror_of', 'group', 'quota', 'quota_limit',
            'partly_available', 'approve_manually', 'timezone', 'data',
            '_start', '_end', '_raster',
            'buffer_before', 'buffer_after', 'min_notice', 'max_advance',
        ):
            setattr(clone, name, getattr(self, name))
        return clone

    def find_spot(self, start: datetime, end: datetime) -> Allocation | None:
        """The master if free in the range, else the first free mirror
        (``libres.db.booking.spots.first_free_sibling``)."""
        from libres.db.booking.spots import first_free_sibling

        return first_free_sibling(self.get_master(), start, end)

    @property
    def quota_left(self) -> int:
        """The free spots over the whole allocation (``libres.db.booking.spots.free_siblings``)."""
        from libres.db.booking.spots import free_siblings

        return free_siblings(self)

    @property
    def in_group(self) -> bool:
        count = self._session().scalar(
            select(func.count()).select_from(Allocation).where(
                Allocation.resource == self.resource,
                Allocation.group == self.group,
            )
        )
        return bool(count and count > 1)

    @property
    def is_separate(self) -> bool:
        if self.partly_available:
            return True
        return not self.in_group

    @property
    def pending_reservations(self) -> Query[Any]:
        from sqlalchemy import inspect

        if not inspect(self).persistent:
            raise errors.LibresAssertionError('the allocation must be persistent and attached')
        reservation: type[Reservation] = self.models.Reservation
        return self._session().query(reservation.id).filter(
            reservation.target == self.group,
            reservation.status == 'pending',
        )

    @property
    def waitinglist_length(self) -> int:
        return self.pending_reservations.count()


def partition_flags(flags: list[bool]) -> list[tuple[float, bool]]:
    """Merge runs of equal flags into (percent, flag); the shares sum to 100."""
    if not flags:
        return []
    runs: list[list[Any]] = []
    for flag in flags:
        if runs and runs[-1][1] == flag:
            runs[-1][0] += 1
        else:
            runs.append([1, flag])
    partitions = [(count * 100.0 / len(flags), flag) for count, flag in runs]
    # Floating point drift goes into the last block so the total is exact.
    drift = 100.0 - sum(share for share, _ in partitions)
    partitions[-1] = (partitions[-1][0] + drift, partitions[-1][1])
    return partitions
