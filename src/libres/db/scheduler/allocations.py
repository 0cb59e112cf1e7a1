"""Creating, changing and removing allocations, and their quota mirrors."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, cast

from sqlalchemy import delete, func, insert, inspect, not_, select
from sqlalchemy.orm import Query, lazyload

from libres.context.core import missing
from libres.context.replicas import on_primary
from libres.db.booking import buffers
from libres.db.booking.dates import DatePair, Dates
from libres.db.booking.policies import checked_policies
from libres.db.booking.spots import naive_utc
from libres.db.gc_pause import collector_paused_for
from libres.db.models import Allocation, Reservation, ReservationBlocker, ReservedSlot
from libres.db.overlap import overlap_hint
from libres.db.scheduler.base import AllocationT, ReservationT, SchedulerBase
from libres.db.sql.allocation_batch import BATCH_COLUMNS, BATCH_ROWS
from libres.modules import errors, events, validation
from libres.modules.dates import align_date_to_day, utcnow
from libres.modules.rasterizer import is_valid_raster, rasterize_span
from libres.modules.utils import generate_uuids

DAYS_MAP = {'mo': 0, 'tu': 1, 'we': 2, 'th': 3, 'fr': 4, 'sa': 5, 'su': 6}


def _array_literal(moments: list[datetime]) -> str:
    # Text is several times cheaper to send than a list of datetimes, which
    # the driver adapts one element at a time. Each keeps its own offset.
    return '{' + ','.join([moment.isoformat() for moment in moments]) + '}'


def _spans_overlap(a: DatePair, b: DatePair) -> bool:
    return a[0] <= b[0] <= a[1] or b[0] <= a[0] <= b[1]


def weekdays(days: Iterable[Any]) -> set[Any]:
    """Weekday numbers for 'mo'…'su'; other values pass through."""
    return {DAYS_MAP.get(day, day) for day in days}


class AllocationsMixin(SchedulerBase[AllocationT, ReservationT]):
    """Allocations: the time that may be booked."""

    def _whole_days(self, dates: list[DatePair]) -> list[DatePair]:
        return [
            (align_date_to_day(s, self.timezone, 'down'), align_date_to_day(e, self.timezone, 'up'))
            for s, e in dates
        ]

    def _masters_in_hull(self, spans: list[DatePair]) -> list[AllocationT]:
        """Own masters between the first start and the last end, in one query
        with one condition (a week of hourly spans is one range, not 168)."""
        first = min(start for start, _ in spans)
        last = max(end for _, end in spans)
        return self.queries.allocations_in_range(self.managed_allocations(), first, last).filter(
            Allocation.resource == self.resource,
            Allocation.resource == Allocation.mirror_of,
            overlap_hint(first, last),
        ).options(lazyload(Allocation.reserved_slots)).all()

    def _without_overlaps(self, spans: list[DatePair], skip_overlapping: bool) -> list[DatePair]:
        """The spans that overlap no existing master; with ``skip_overlapping``
        unset, the first overlap raises instead."""
        skipped: set[int] = set()
        for existing in self._masters_in_hull(spans):
            span_existing = (existing._start, existing._end)
            for index, span in enumerate(spans):
                if not _spans_overlap(span_existing, span):
                    continue
                if not skip_overlapping:
                    raise errors.OverlappingAllocationError(
                        span[0], span[1], existing, timezone=self.timezone
                    )
                skipped.add(index)
        return [span for index, span in enumerate(spans) if index not in skipped]

    def _plain_batch_possible(self, data: Any) -> bool:
        # The array insert fills the columns of the base model with empty data;
        # subclasses with columns of their own and real data take the ORM path.
        own_columns = set(self.allocation_cls.__mapper__.columns.keys())
        return not data and own_columns == set(Allocation.__mapper__.columns.keys())

    def _insert_batch(
        self, columns: dict[str, Any], group: uuid.UUID | None, spans: list[DatePair],
        guarded: bool = False,
    ) -> list[AllocationT]:
        """Insert the allocations with one statement of a fixed size: the spans
        travel as two arrays, so a thousand rows cost one short query text.
        Without a shared ``group`` each row gets a random one of its own.

        ``guarded`` inserts nothing, and returns an empty list, if any row of
        the resource overlaps a span: the caller then looks for the overlap
        itself. It spares the separate overlap query when there is none."""
        params = {
            **{name: value for name, value in columns.items() if name not in ('mirror_of', 'data')},
            'guarded': guarded,
            'first': naive_utc(min(start for start, _ in spans)),
            'last': naive_utc(max(end for _, end in spans)),
            'resource': str(columns['resource']),
            'group': str(group) if group else None,
            'starts': _array_literal([start for start, _ in spans]),
            'ends': _array_literal([end for _, end in spans]),
            'created': naive_utc(utcnow()),
        }
        table = Allocation.__table__
        # Bound into the statement: parameters given to an ORM insert are rows.
        query = insert(self.allocation_cls).from_select(
            [table.c[name] for name in BATCH_COLUMNS], BATCH_ROWS.bindparams(**params)
        ).returning(
            self.allocation_cls
        ).options(lazyload(self.allocation_cls.reserved_slots))
        # The slot collections stay unloaded, as after a flush: read on access.
        with collector_paused_for(self.context):
            by_start = {a._start: a for a in self.session.scalars(query)}
        if not by_start:
            return []  # guarded, and something overlaps
        return [by_start[start] for start, _ in spans]

    def allocate(
        self,
        dates: Dates,
        partly_available: bool = False,
        raster: int = 5,
        whole_day: bool = False,
        quota: int | None = None,
        quota_limit: int = 0,
        grouped: bool = False,
        data: dict[str, Any] | None = None,
        approve_manually: bool = False,
        skip_overlapping: bool = False,
        buffer_before: timedelta | None = None,
        buffer_after: timedelta | None = None,
        min_notice: timedelta | None = None,
        max_advance: timedelta | None = None,
    ) -> list[AllocationT]:
        """Create allocations for the given date ranges and return the masters.

        :param dates: a ``(start, end)`` pair, a sequence of pairs, or the starts
            and ends in one flat sequence; naive datetimes are read in the
            scheduler's zone (a time that does not exist there, or occurs
            twice, is refused unless ``whole_day``).
        :param raster: 5, 10, 15, 30 or 60 minutes; the spans are widened to it.
        :param quota: spots per allocation (default 1); ``quota_limit`` the
            most one reservation may take (0: no limit).
        :param grouped: one group for all dates, booked only as a whole.
        :param skip_overlapping: leave out dates that overlap an existing
            allocation instead of raising ``OverlappingAllocationError``.
        :param buffer_before: a ``timedelta`` on the raster kept free before
            every booking (partly available allocations only); ``buffer_after``
            likewise after it. A buffer never meets a booking or another buffer.
        :param min_notice: a ``timedelta``: bookings start (at their first
            slot: on the raster, or where a whole allocation starts) at least
            this far from now; ``max_advance`` at most this far (``reserve``
            raises ``OutsideBookingWindow``).
        :returns: the new master allocations, flushed, in the order of the dates.
        :raises InvalidAllocationError: a group that is partly available or
            skips overlaps; an end before the start; dates overlapping each other.
        :raises OverlappingAllocationError: a date overlaps an existing allocation.
        :raises InvalidArgument: a negative or off-raster buffer, a buffer on a
            whole allocation, ``min_notice`` above ``max_advance``.

        Fires ``on_allocations_added``; one ORM INSERT for the batch.
        """
        for flag, flag_value in (('partly_available', partly_available), ('whole_day', whole_day),
                                 ('grouped', grouped), ('approve_manually', approve_manually),
                                 ('skip_overlapping', skip_overlapping)):
            validation.check_flag(flag_value, flag)
        values = validation.date_values(dates)
        if not whole_day:
            self._engine.dates.refuse_unclear(values, allocating=True)
        prepared = self._engine.dates.pairs(values)
        data = validation.checked_data(data)
        quota = self._checked_allocation_options(
            quota, quota_limit, raster, partly_available, grouped, skip_overlapping
        )
        policies = checked_policies(
            buffer_before, buffer_after, min_notice, max_advance, raster, partly_available
        )
        rastered = self._rastered_spans(prepared, raster, whole_day)
        if not rastered:
            return []
        columns = {
            'type': self.allocation_cls.__mapper__.polymorphic_identity,
            'resource': self.resource, 'mirror_of': self.resource,
            'quota': quota, 'quota_limit': quota_limit,
            'partly_available': partly_available, 'approve_manually': approve_manually,
            'timezone': self.timezone, 'data': data if data is not None else {}, '_raster': raster,
            **policies.columns(),
        }
        allocations = self._insert_allocations(columns, uuid.uuid4() if grouped else None, rastered,
                                               skip_overlapping)
        events.on_allocations_added(self.context, cast('list[Allocation]', allocations))
        return allocations

    @staticmethod
    def _checked_allocation_options(
        quota: Any, quota_limit: Any, raster: Any, partly_available: bool, grouped: bool,
        skip_overlapping: bool,
    ) -> int:
        """Refuse options that do not go together; return the quota to use."""
        for name, value in (('quota', quota), ('quota_limit', quota_limit)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise errors.InvalidArgumentType(f'the {name} must be a whole number, got {value!r}')
        if partly_available and grouped:
            raise errors.InvalidAllocationError('a group cannot be partly available')
        if skip_overlapping and grouped:
            raise errors.InvalidAllocationError('a group cannot skip overlapping dates')
        if not is_valid_raster(raster):
            raise errors.LibresAssertionError(f'invalid raster {raster!r}: use 5, 10, 15, 30 or 60')
        quota = quota or 1
        if quota < 0:
            raise errors.InvalidArgument(f'the quota must be at least 1, got {quota}')
        if quota_limit < 0:
            raise errors.InvalidArgument(f'the quota limit must be 0 (no limit) or more, got {quota_limit}')
        return int(quota)

    def _rastered_spans(self, dates: list[DatePair], raster: int, whole_day: bool) -> list[DatePair]:
        """The spans on the raster (whole local days first if asked), each
        ending after it starts and none overlapping another."""
        if whole_day:
            dates = self._whole_days(dates)
        rastered = [rasterize_span(s, e, raster) for s, e in dates]
        for span in rastered:
            if span[1] < span[0]:
                raise errors.InvalidAllocationError(
                    f'{errors.describe_span(span[0], span[1], self.timezone)}: an allocation must end '
                    f'after it starts'
                )
        # Sorted by start, two spans overlap only if some neighbours do.
        if any(_spans_overlap(a, b) for a, b in pairwise(sorted(rastered))):
            raise errors.InvalidAllocationError('the given dates overlap each other')
        return rastered

    def _insert_allocations(
        self, columns: dict[str, Any], group: uuid.UUID | None, spans: list[DatePair],
        skip_overlapping: bool,
    ) -> list[AllocationT]:
        """Insert the spans that overlap nothing (or raise); ``group`` shared,
        else a group of its own per allocation."""
        plain = self._plain_batch_possible(columns['data'])
        if plain:
            # Most batches overlap nothing: try that in the insert itself.
            inserted = self._insert_batch(columns, group, spans, guarded=True)
            if inserted:
                return inserted
        kept = self._without_overlaps(spans, skip_overlapping)
        if not kept:
            return []
        if plain:
            return self._insert_batch(columns, group, kept)
        # What the start and end setters store: rastered, aware UTC.
        rows = [{**columns, 'group': group or uuid.uuid4(), '_start': start, '_end': end}
                for start, end in kept]
        return list(self.session.scalars(
            insert(self.allocation_cls).returning(self.allocation_cls, sort_by_parameter_order=True),
            rows,
        ))

    # --- quota ----------------------------------------------------------------

    def change_quota(self, master: Allocation, new_quota: int) -> None:
        """Change the quota of a master and its mirrors.

        Growing only sets the quota. Shrinking moves booked slots to the front
        spots, flushes after each move and deletes the mirrors no longer needed
        (bulk delete, then the session is expired). No event fires.

        :param master: the master `Allocation` (one read from a replica is
            changed on the primary).
        :param new_quota: an `int`, at least 1.
        :raises InvalidArgumentType: the master is not an `Allocation` or the
            quota not a whole number.
        :raises LibresAssertionError: the quota is below 1.
        :raises AffectedReservationError: fewer spots are free than the quota
            shrinks by (`existing` is `None`; the message says how many to remove).
        """
        if not isinstance(master, Allocation):
            raise errors.InvalidArgumentType(f'the master must be an Allocation, got {master!r}')
        validation.check_whole_number(new_quota, 'quota')
        if new_quota <= 0:
            raise errors.LibresAssertionError('the quota must be at least 1')
        # A master a replica read returned is changed on the primary.
        master = on_primary(self.session, master)
        if new_quota == master.quota:
            return
        if new_quota > master.quota:
            master.quota = new_quota
            return

        self._shrink_quota(master, new_quota)

    def _shrink_quota(self, master: Allocation, new_quota: int) -> None:
        """Move the booked slots to the first ``new_quota`` spots and delete
        the mirrors left over."""
        allocations: list[Allocation] = [master, *self.allocation_mirrors_by_master(master)]
        # A spot under an expired hold counts as free: clear it before moving into it.
        self._engine.slots.remove_expired_holds_on(allocations)
        free = [a for a in allocations if a.is_available()]
        if len(free) < master.quota - new_quota:
            raise errors.AffectedReservationError(None, detail=(
                f'allocation {master.id} has {len(free)} of {master.quota} spots free, so its quota '
                f'cannot shrink to {new_quota}: remove '
                f'{master.quota - new_quota - len(free)} booking(s) first'
            ))

        reordered = self.reordered_keylist(allocations, new_quota)
        targets = set(reordered.values())
        unused = {key for key in reordered if key not in targets}
        self._move_booked_slots(allocations, reordered, new_quota)

        self.session.flush()
        self.session.execute(
            delete(Allocation).where(
                Allocation.resource.in_(list(unused)),
                Allocation.id != master.id,
                Allocation._start == master._start,
                Allocation.mirror_of == master.mirror_of,
            ).execution_options(synchronize_session='fetch')
        )
        self.session.expire_all()

    def _move_booked_slots(
        self, allocations: list[Allocation], reordered: dict[uuid.UUID, uuid.UUID | None], new_quota: int
    ) -> None:
        by_resource = {a.resource: a for a in allocations}
        for allocation in allocations:
            allocation.quota = new_quota
            target_key = reordered[allocation.resource]
            if target_key is None or target_key == allocation.resource:
                continue
            target = by_resource[target_key]
            if target.is_transient:
                self.session.add(target)
            # Through the ORM so the identity map follows the new primary keys;
            # one flush per allocation, in key order, so every target has been
            # vacated before slots arrive (the primary key is checked per row).
            for slot in list(allocation.reserved_slots):
                slot.resource = target.resource
                slot.allocation = target
            self.session.flush()

    def reordered_keylist(
        self, allocations: list[Allocation], new_quota: int
    ) -> dict[uuid.UUID, uuid.UUID | None]:
        """Where each booked spot moves when the quota shrinks (used by `change_quota`).

        Booked spots close up to the front, in key order; nothing is changed.

        :param allocations: a list of one master and all its mirrors (imaginary
            ones included, as `[master, *allocation_mirrors_by_master(master)]`).
        :param new_quota: an `int` (checked only for its type).
        :returns: a dict of every spot's resource UUID to the resource it moves
            to; `None` for free spots.
        :raises InvalidArgumentType: not a list of `Allocation`, or the quota not
            a whole number.
        :raises LibresAssertionError: not exactly one master among them.
        """
        if not isinstance(allocations, (list, tuple)) or \
                not all(isinstance(a, Allocation) for a in allocations):
            raise errors.InvalidArgumentType(
                f'allocations must be a list of Allocations, got {allocations!r}'
            )
        validation.check_whole_number(new_quota, 'quota')
        masters = [a for a in allocations if a.is_master]
        if len(masters) != 1:
            raise errors.LibresAssertionError('exactly one master allocation is required')
        master = masters[0]
        keys = [master.resource, *generate_uuids(master.resource, master.quota)]
        by_resource = {a.resource: a for a in allocations}
        reordered: dict[uuid.UUID, uuid.UUID | None] = dict.fromkeys(keys)
        offset = 0
        for index, key in enumerate(keys):
            if by_resource[key].is_available():
                offset += 1
            else:
                reordered[key] = keys[index - offset]
        return reordered

    # --- moving and removing ----------------------------------------------------

    def move_allocation(
        self,
        master_id: int,
        new_start: datetime | None = None,
        new_end: datetime | None = None,
        group: uuid.UUID | None = None,
        new_quota: int | None = None,
        approve_manually: bool | None = None,
        quota_limit: int | None = 0,
        whole_day: bool | None = None,
        data: Any = missing,
    ) -> None:
        """Move an allocation (its master and mirrors) to new dates, and/or
        give its group a new group id, quota, quota limit or approval mode.

        :param master_id: the master allocation's id.
        :param new_start, new_end: the new span (naive: the scheduler's zone);
            ``whole_day`` widens it to whole local days.
        :param data: new data for the moved allocations (default: unchanged).
        :raises LibresAssertionError: no id; nothing to change; another zone.
        :raises OverlappingAllocationError: the new span meets another allocation.
        :raises AffectedReservationError: a booked slot would fall outside;
            ``AffectedPendingReservationError`` for a waiting reservation.
        """
        if not master_id:
            raise errors.LibresAssertionError('a master id is required')
        if not ((new_start and new_end) or group or new_quota):
            raise errors.LibresAssertionError('give new dates, a group or a new quota')
        validation.check_id(master_id, 'master id')
        validation.check_optional_uuid(group, 'group')
        validation.check_optional_id(new_quota, 'quota')
        validation.check_optional_id(quota_limit, 'quota limit')
        if new_start and new_end:
            new_start, new_end = self._new_allocation_dates(new_start, new_end, bool(whole_day))

        master = self.allocation_by_id(master_id)
        changing: list[Allocation] = [master, *self.allocation_mirrors_by_master(master)]
        if master.timezone != self.timezone:
            raise errors.LibresAssertionError(
                f'allocation {master.id} was made in {master.timezone}, this scheduler is in {self.timezone}'
            )
        if not (group or master.group):
            raise errors.LibresAssertionError(f'allocation {master.id} has no group')
        new = self._moved_span(master, changing, new_start, new_end, whole_day)
        self._refuse_moving_bookings(master, changing, new)

        for member in self.allocations_by_group(group or master.group):
            if approve_manually is not None:
                member.approve_manually = approve_manually
            if quota_limit is not None:
                member.quota_limit = quota_limit
            if new_quota is not None:
                self.change_quota(member, new_quota)

        # Buffers follow the new edges (libres.db.booking.buffers).
        kept = [a for a in changing if not (inspect(a).detached or inspect(a).deleted)]
        span = (new.start, new.end)
        changed_buffers = [c for a in kept if (c := buffers.change_for(a, span)) is not None]
        buffers.delete_stale(self.session, changed_buffers)
        for allocation in changing:
            allocation._start = new.start
            allocation._end = new.end
            allocation.group = group or master.group
            if data is not missing:
                allocation.data = validation.checked_data(data)
        buffers.add_new(changed_buffers)

    def _new_allocation_dates(self, start: datetime, end: datetime, whole_day: bool) -> DatePair:
        """Aware UTC; naive times in the DST gap or repeated hour refused
        (not for whole days, which are widened to local midnights later)."""
        if not whole_day:
            self._engine.dates.refuse_unclear((start, end), allocating=True)
        return self._engine.dates.date(start), self._engine.dates.date(end)

    def _moved_span(
        self, master: Allocation, changing: list[Allocation], new_start: datetime | None,
        new_end: datetime | None, whole_day: bool | None,
    ) -> AllocationT:
        """The new span as an unsaved allocation (rastered like the master),
        refused if it ends before it starts or meets another allocation."""
        new_start = new_start or master.start
        new_end = new_end or master.end
        if whole_day:
            new_start = align_date_to_day(new_start, self.timezone, 'down')
            new_end = align_date_to_day(new_end, self.timezone, 'up')
        if new_end < new_start:
            raise errors.InvalidAllocationError(
                f'{errors.describe_span(new_start, new_end, self.timezone)}: an allocation must end '
                f'after it starts'
            )
        new = self.allocation_cls(
            start=new_start, end=new_end, raster=master.raster, timezone=self.timezone
        )
        ids = [a.id for a in changing if a.id is not None]
        overlapping = self.allocations_in_range(new.start, new.end).filter(
            not_(Allocation.id.in_(ids))
        ).first()
        if overlapping is not None:
            raise errors.OverlappingAllocationError(new.start, new.end, overlapping, timezone=self.timezone)
        return new

    def _refuse_moving_bookings(
        self, master: Allocation, changing: list[Allocation], new: Allocation
    ) -> None:
        """Refuse a move that would leave a booked slot or a waiting
        reservation outside the new span (whole-only allocations: any move)."""
        changes_span = new.start != master.start or new.end != master.end
        for allocation in changing:
            if allocation.is_transient:
                continue
            if allocation.partly_available:
                for slot in allocation.reserved_slots:
                    # A buffer follows the new edges; a booked slot must fit.
                    if not slot.buffer and not new.contains(slot.start, slot.end):
                        raise errors.AffectedReservationError(slot, timezone=self.timezone)
            elif changes_span and allocation.reserved_slots:
                raise errors.AffectedReservationError(allocation.reserved_slots[0], timezone=self.timezone)
        if master.partly_available:
            for pending in self._pending_spans(master):
                if pending.start is not None and pending.end is not None and \
                        not new.contains(pending.start, pending.end):
                    raise errors.AffectedPendingReservationError(pending, timezone=self.timezone)
        elif changes_span:
            pending_row = self._pending_spans(master).first()
            if pending_row is not None:
                raise errors.AffectedPendingReservationError(pending_row, timezone=self.timezone)

    def _pending_spans(self, master: Allocation) -> Any:
        return self.session.query(Reservation.id, Reservation.start, Reservation.end).filter(
            Reservation.target == master.group, Reservation.status == 'pending'
        )

    def remove_allocation(
        self, id: int | None = None, groups: Iterable[uuid.UUID] | None = None
    ) -> None:
        """Delete an allocation with its mirrors, or every allocation of some groups.

        Deleted through the unit of work (`session.delete`, flushed with the
        next flush); imaginary mirrors are skipped. No event fires.

        :param id: the `int` id of an allocation of this scheduler; if given,
            `groups` is ignored.
        :param groups: an iterable of group UUIDs: all their masters and mirrors.
        :raises NotSupported: neither is given (a `NotImplementedError` too).
        :raises RecordNotFound: no allocation of this scheduler has the id.
        :raises InvalidUUID: a group is not a UUID.
        :raises LibresAssertionError: an allocation belongs to another scheduler.
        :raises AffectedReservationError: an allocation holds a reserved slot.
        :raises AffectedPendingReservationError: a pending reservation waits for one.
        """
        allocations: list[Allocation]
        if id:
            allocations = self.allocation_by_id(id).siblings()
        elif groups:
            allocations = list(self.allocations_by_groups(groups, masters_only=False))
        else:
            raise errors.NotSupported('give an allocation id or groups')

        for allocation in allocations:
            if allocation.mirror_of != self.resource:
                raise errors.LibresAssertionError(f'allocation {allocation.id} belongs to another scheduler')
            if allocation.is_transient:
                continue
            if allocation.reserved_slots:
                raise errors.AffectedReservationError(allocation.reserved_slots[0], timezone=self.timezone)
            pending = self._pending_spans(allocation).first()
            if pending is not None:
                raise errors.AffectedPendingReservationError(pending, timezone=self.timezone)

        for allocation in allocations:
            if not allocation.is_transient:
                self.session.delete(allocation)

    def remove_unused_allocations(
        self,
        start: date | datetime,
        end: date | datetime,
        days: Iterable[Any] | None = None,
        exclude_groups: bool = False,
    ) -> int:
        """Delete allocations nobody booked, blocked or waits for, inside `[start, end]`.

        A group goes only when all of it lies in the range and no reservation
        or blocker targets it. Without `days`: one bulk delete; with `days`: deleted one by one
        through the unit of work. No event fires.

        :param start: a `date` (midnight) or `datetime`; naive values are read in
            the scheduler's zone, aware ones converted.
        :param end: likewise (a plain `date` means midnight at its start).
        :param days: weekdays like `['mo', 'tu']` (of the local start); any
            weekday filter also leaves grouped allocations alone.
        :param exclude_groups: `True` leaves grouped allocations alone.
        :returns: the number of allocations deleted.
        :raises InvalidArgumentType: a date is not a date, or `days` not a list.
        """
        for name, value in (('start', start), ('end', end)):
            if not isinstance(value, date):
                raise errors.InvalidArgumentType(f'the {name} must be a date or datetime, got {value!r}')
        if days is not None and (isinstance(days, (str, bytes)) or not isinstance(days, Iterable)):
            raise errors.InvalidArgumentType(f"days must be a list like ['mo', 'tu'], got {days!r}")
        start_dt = self._engine.dates.date(_as_datetime(start))
        end_dt = self._engine.dates.date(_as_datetime(end))

        weekday_filter: set[Any] | None = None
        if days:
            weekday_filter = weekdays(days)
            if len(weekday_filter & set(range(7))) == 7:
                weekday_filter = None
            # Kept from the original: any weekday filter leaves groups alone.
            exclude_groups = True

        candidates = self._unused_allocations(start_dt, end_dt, exclude_groups)
        if weekday_filter is None:
            return candidates.delete(synchronize_session='fetch')

        removed = 0
        for allocation in candidates:
            if allocation.display_start().weekday() in weekday_filter:
                self.session.delete(allocation)
                removed += 1
        return removed


    def _unused_allocations(self, start: datetime, end: datetime, exclude_groups: bool) -> Query[Allocation]:
        """Own allocations inside [start, end] without slots, reservations or
        blockers, whose whole group lies inside (and is one allocation, with
        ``exclude_groups``)."""
        managed = Allocation.mirror_of == self.resource
        used_ids = select(ReservedSlot.allocation_id).where(
            ReservedSlot.resource.in_(self._engine.records.managed_allocation_resources())
        )
        reserved_groups = select(Reservation.target).where(Reservation.resource == self.resource)
        blocked_groups = select(ReservationBlocker.target).where(
            ReservationBlocker.resource == self.resource
        )
        inside = (
            select(Allocation.group)
            .where(managed)
            .group_by(Allocation.group)
            .having(func.min(Allocation._start) >= start)
            .having(func.max(Allocation._end) <= end)
        )
        if exclude_groups:
            inside = inside.having(func.count(Allocation.id) == 1)
        return self.session.query(Allocation).filter(
            managed,
            Allocation._start >= start,
            Allocation._end <= end,
            not_(Allocation.id.in_(used_ids)),
            not_(Allocation.group.in_(reserved_groups)),
            not_(Allocation.group.in_(blocked_groups)),
            Allocation.group.in_(inside),
        )

def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time())
