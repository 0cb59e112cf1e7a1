"""How free is the calendar: availability, free spots and search."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any, Generic, Literal, NamedTuple, overload

from sqlalchemy import Integer, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import lazyload

from libres.context.replicas import replica_read
from libres.db import availability_rows
from libres.db.booking.spots import as_utc, group_size, is_free, own_slot_starts
from libres.db.free_intervals import FreeInterval, free_intervals_of
from libres.db.gc_pause import collector_paused_for
from libres.db.models import Allocation
from libres.db.queries import Queries
from libres.db.scheduler.allocations import weekdays
from libres.db.scheduler.base import AllocationT, ReservationT, SchedulerBase
from libres.db.time_window import TimeWindow
from libres.modules import clock, errors, validation

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
CHOICES = ('yes', 'no', 'any')
# Below this share of a day, search_allocations filters the window before it
# builds any object (in SQL, or on plain columns).
NARROW_WINDOW = 0.5


# Given an allocation's start, end and raster: whether the search checked
# the window on it already (in SQL or on plain columns).
WindowChecked = Callable[[datetime, datetime, int], bool]


def nothing_checked(a_start: datetime, a_end: datetime, raster: int) -> bool:
    return False


def all_checked(a_start: datetime, a_end: datetime, raster: int) -> bool:
    return True


def array_of(values: list[Any], item_type: Any) -> Any:
    """One array parameter instead of an IN list of thousands of parameters."""
    return bindparam('values', values, type_=ARRAY(item_type))


class AvailabilityMixin(SchedulerBase[AllocationT, ReservationT]):
    """Read-only questions about free time."""

    @replica_read
    def availability(self, start: datetime | None = None, end: datetime | None = None) -> float:
        """The free share of this scheduler's allocations in the range, in percent (0–100).

        With blocking resources, what they booked counts as taken and each
        allocation weighs by its quota. Allocations the context's exposure hides
        are left out. Read-only; runs on a replica when one is configured.

        :param start: a `datetime`, or `None` for the earliest time; naive values
            are read in the scheduler's zone, aware ones converted.
        :param end: likewise, `None` for the latest time.
        :returns: a `float`.
        :raises InvalidArgumentType: a date is not a `datetime`.
        """
        start = self._engine.dates.date(start or EARLIEST)
        end = self._engine.dates.date(end or LATEST)
        if not self.blocking_resources:
            return self.queries.availability_by_range(start, end, [self.resource])

        # Weighted by quota: a free quota-4 allocation is 100 %, not 25 %.
        weighted = 0.0
        quotas = 0
        for allocation, availability, _ in self.queries.allocations_with_availability_by_range(
            start, end, self.resource, self.blocking_resources, normalize_dst=False
        ):
            weighted += availability * allocation.quota
            quotas += allocation.quota
        return weighted / quotas if quotas else 0.0

    @replica_read
    def free_intervals(
        self, start: datetime, end: datetime, duration: timedelta | None = None
    ) -> list[FreeInterval]:
        """The bookable intervals in `[start, end)`, in the scheduler's zone.

        Merged raster slots, each a `FreeInterval` with its allocation id and
        the spots free throughout, after quota, blockers and blocking resources;
        hidden allocations (exposure) are left out. One query, read-only; runs
        on a replica when one is configured (see `libres.db.free_intervals`).

        :param start: a `datetime`; naive values are read in the scheduler's
            zone, aware ones converted.
        :param end: likewise; must lie after `start`.
        :param duration: a positive `timedelta`: keep only intervals at least
            that long; `None` keeps all.
        :returns: a list of `FreeInterval`, in start order.
        :raises InvalidArgumentType: a date is not a `datetime`.
        :raises ReservationParametersInvalid: the end is not after the start, or
            the duration is not a positive `timedelta`.
        """
        return free_intervals_of(self, start, end, duration)

    @replica_read
    def search_allocations(
        self,
        start: datetime,
        end: datetime,
        days: Iterable[Any] | None = None,
        minspots: int = 0,
        available_only: bool = False,
        whole_day: str = 'any',
        groups: str = 'any',
        strict: bool = False,
    ) -> list[AllocationT]:
        """Allocations in the date range whose times meet the time window.

        :param start, end: the date range; their times of day are the window
            searched on each day (naive: the scheduler's zone).
        :param days: weekdays to keep (``'mo'`` … ``'su'`` or 0–6).
        :param minspots: keep allocations with at least this many free spots
            (and a quota limit that allows them).
        :param available_only: keep allocations with a free spot in the window.
        :param whole_day, groups: ``'yes'``, ``'no'`` or ``'any'``.
        :param strict: without it, the other members of a group found are
            added (marked ``is_extra_result``).
        :returns: master allocations (ORM objects) ordered by start.
        :raises LibresAssertionError: no start or end; a bad choice.
        :raises NotSupported: ``available_only`` with blocking resources.
        """
        self._check_search_arguments(start, end, days, minspots, available_only, whole_day, groups, strict)
        window = TimeWindow(self.timezone, start, end)
        keeps = _SearchFilter(self, window, weekdays(days) if days else None, whole_day,
                              minspots, available_only)
        candidates, keeps.window_checked = self._search_candidates(
            start, end, window, available_only, keeps.exposes_everything
        )
        if minspots and candidates:
            keeps.read_availabilities([candidate.allocation for candidate in candidates])
        found: list[AllocationT] = []
        seen_groups: set[Any] = set()
        for allocation, members, taken in candidates:
            if not keeps(allocation, taken):
                continue
            in_group = members > 1
            if in_group:
                seen_groups.add(allocation.group)
            if groups == 'any' or in_group == (groups == 'yes'):
                found.append(allocation)
        if not strict and groups != 'no' and seen_groups:
            found = self._with_other_members(found, seen_groups)
        return found

    def _check_search_arguments(
        self, start: Any, end: Any, days: Any, minspots: Any, available_only: Any,
        whole_day: Any, groups: Any, strict: Any,
    ) -> None:
        if not (start and end):
            raise errors.LibresAssertionError('a start and an end are required')
        if whole_day not in CHOICES or groups not in CHOICES:
            raise errors.LibresAssertionError("whole_day and groups take 'yes', 'no' or 'any'")
        validation.check_datetime(start, 'start')
        validation.check_datetime(end, 'end')
        validation.check_whole_number(minspots, 'minspots')
        validation.check_flag(available_only, 'available_only')
        validation.check_flag(strict, 'strict')
        if days is not None and (isinstance(days, (str, bytes)) or not isinstance(days, Iterable)):
            raise errors.InvalidArgumentType(f"days must be a list like ['mo', 'tu'], got {days!r}")
        if available_only and self.blocking_resources:
            raise errors.NotSupported('available_only is not supported with blocking resources')

    def _search_candidates(
        self, start: datetime, end: datetime, window: TimeWindow, reads_slots: bool,
        exposes_everything: bool,
    ) -> tuple[list[Candidate[AllocationT]], WindowChecked]:
        """The masters in range (as objects, each with its group size and, if
        ``reads_slots``, the starts of its own blocking slots), ordered by
        start, and on which of them the window was checked already."""
        query = self.allocations_in_range(start, end)
        # A narrow window keeps few rows: leave the others in the database and
        # build objects only for those kept. A wide one keeps most, so that
        # the extra work costs more than the objects it spares.
        narrow = exposes_everything and window.share_of_day() < NARROW_WINDOW
        if not narrow:
            return self._read_candidates(query, reads_slots), nothing_checked
        in_sql = window.sql_filter(*self._local_days(start, end, window))
        if in_sql is not None:
            return self._read_candidates(
                query.filter(in_sql.condition), reads_slots, in_sql.parameters
            ), in_sql.exact_for
        # Days that do not begin at a plain midnight: pick the rows from plain
        # columns, and build objects only for those.
        columns = query.with_entities(Allocation.id, Allocation._start, Allocation._end, Allocation._raster)
        with collector_paused_for(self.context):
            spans = columns.all()
        ids = [id for id, a_start, a_end, raster in spans if window.overlaps(a_start, a_end, raster)]
        if len(ids) < len(spans):
            # Within the range's index read: an array of ids alone leaves
            # PostgreSQL 15 without statistics a sequential scan.
            query = query.filter(Allocation.id == any_(array_of(ids, Integer)))
        return self._read_candidates(query, reads_slots), all_checked

    def _local_days(self, start: datetime, end: datetime, window: TimeWindow) -> tuple[date, date]:
        """The local days of the allocations in ``[start, end]``, but those
        that begin before the range's first day or end after its last."""
        first = self._prepare_date(start).astimezone(window.zone).date()
        last = self._prepare_date(end).astimezone(window.zone).date()
        return first - timedelta(days=1), last + timedelta(days=1)

    def _read_candidates(
        self, query: Any, reads_slots: bool, parameters: dict[str, Any] | None = None
    ) -> list[Candidate[AllocationT]]:
        """The objects of ``query`` ordered by start, with what is read along
        (``parameters``: the values of its bind parameters)."""
        # The group sizes in the same statement, a lookup per object; the spot
        # checks read the starts of the slots, not slot objects (the caller
        # may still load the collections).
        read_along = (group_size(), own_slot_starts()) if reads_slots else (group_size(),)
        ordered = (
            query.add_columns(*read_along)
            .order_by(Allocation._start)
            .options(lazyload(Allocation.reserved_slots))
        )
        with collector_paused_for(self.context):
            # Run as a statement: the legacy query builds its rows of an object
            # and a column about a third slower (a year: 8,759 rows, 70 ms).
            if not reads_slots:
                rows = self.session.execute(ordered.statement, parameters)
                return [Candidate(allocation, size, None) for allocation, size in rows]
            rows = self.session.execute(ordered.statement, {**(parameters or {}), 'now': clock.now()})
            return [
                Candidate(allocation, size, {as_utc(start) for start in starts or ()})
                for allocation, size, starts in rows
            ]

    def _with_other_members(self, found: list[AllocationT], groups: set[Any]) -> list[AllocationT]:
        """``found`` and the other members of its groups, marked as extra."""
        known = {a.id for a in found}
        extras = self.allocations_by_groups(groups).filter(Allocation.id.notin_(known)).all()
        for extra in extras:
            extra.is_extra_result = True  # type: ignore[attr-defined]
        return sorted(found + extras, key=lambda a: a._start)

    @overload
    def reserved_slots_by_range(
        self, start: datetime, end: datetime, with_buffers: Literal[False] = False
    ) -> tuple[dict[datetime, int], set[datetime]]: ...

    @overload
    def reserved_slots_by_range(
        self, start: datetime, end: datetime, with_buffers: Literal[True]
    ) -> tuple[dict[datetime, int], set[datetime], set[datetime]]: ...

    @replica_read
    def reserved_slots_by_range(
        self, start: datetime, end: datetime, with_buffers: bool = False
    ) -> tuple[dict[datetime, int], set[datetime]] | tuple[
        dict[datetime, int], set[datetime], set[datetime]
    ]:
        """What is booked in the range, per 5-minute slice.

        Counts the slots of this resource and of its blocking resources, on
        masters and mirrors alike. Read-only; runs on a replica when one is
        configured.

        :param start: a `datetime`; naive values are read in the scheduler's
            zone, aware ones converted.
        :param end: likewise.
        :param with_buffers: also return the slices kept free as buffers.
        :returns: `(reserved, blocked)`: a dict of slice start (aware UTC) to the
            number of reservation slots there (bookings and live holds; never
            buffers), and the set of slice starts a blocker holds; with
            `with_buffers`, third the set of buffer slice starts.
        :raises InvalidArgumentType: a date is not a `datetime`.
        """
        return self.queries.reserved_slots_by_range(  # type: ignore[call-overload,no-any-return]
            self._engine.dates.date(start),
            self._engine.dates.date(end),
            self.resource,
            self.blocking_resources,
            with_buffers,
        )

    @replica_read
    def allocations_with_availability_by_range(
        self, start: datetime, end: datetime, normalize_dst: bool = True
    ) -> Iterator[tuple[Allocation, float, list[tuple[float, bool]]]]:
        """Each master allocation in the range with its availability and partitions.

        With blocking resources, what they booked counts as taken (see
        `Queries.allocations_with_availability_by_range`). Read-only; runs on a
        replica when one is configured. A generator: the dates are checked
        when iteration starts.

        :param start: a `datetime`; naive values are read in the scheduler's
            zone, aware ones converted.
        :param end: likewise.
        :param normalize_dst: `True` (default) measures a partly available
            allocation on a DST change day as if the day had 24 hours (as
            calendars draw it).
        :returns: an iterator of `(allocation, availability, partitions)`: the
            master `Allocation`, its free share in percent and a list of
            `(percent of the allocation, taken)` pairs, in start order.
        :raises InvalidArgumentType: a date is not a `datetime`.
        """
        start, end = self._engine.dates.date(start), self._engine.dates.date(end)
        if self.blocking_resources:
            yield from self.queries.allocations_with_availability_by_range(
                start, end, self.resource, self.blocking_resources, normalize_dst
            )
            return

        rows = self.queries.allocations_in_range(self.managed_allocations(), start, end)
        for _, siblings_iter in groupby(rows.order_by(Allocation._start), key=lambda a: a._start):
            siblings = list(siblings_iter)
            if len(siblings) == 1 and siblings[0].partly_available:
                single = siblings[0]
                availability = (
                    single.normalized_availability if normalize_dst else single.availability
                )
            else:
                availability = Queries.availability_by_allocations(siblings)
            for master in (a for a in siblings if a.is_master):
                yield master, availability, master.availability_partitions(normalize_dst=normalize_dst)


# The free-spot rule as libres defines it, kept at import: a host that
# replaces it (on a subclass, the class or an instance) is asked instead.
OWN_SPOT_RULE = (Allocation.find_spot, Allocation.is_available)


class Candidate(NamedTuple, Generic[AllocationT]):
    """A master ``search_allocations`` considers, with what was read along."""

    allocation: AllocationT
    group_size: int
    taken: set[datetime] | None  # starts of its own blocking slots, if read


class _SearchFilter:
    """Whether one candidate of ``search_allocations`` meets every criterion
    but the group one (exposure, window, weekday, whole day, spots)."""

    def __init__(
        self, scheduler: AvailabilityMixin[Any, Any], window: TimeWindow, days: set[Any] | None,
        whole_day: str, minspots: int, available_only: bool,
    ) -> None:
        self.scheduler = scheduler
        self.window = window
        self.days = days
        self.whole_day = whole_day
        self.minspots = minspots
        self.available_only = available_only
        self.window_checked: WindowChecked = nothing_checked
        self.exposes_everything = scheduler.exposes_everything()
        self.availabilities: dict[datetime, float] | None = None

    def read_availabilities(self, candidates: Sequence[Allocation]) -> None:
        """Every candidate's ``scheduler.availability`` over its span, in one
        query, when that method is the plain one: a host that replaces it (on
        the class or the instance), or ``Queries.availability_by_range``, or
        hides allocations, or has blocking resources, is asked per candidate."""
        scheduler = self.scheduler
        plain = (
            not scheduler.blocking_resources
            and 'availability' not in vars(scheduler)
            and type(scheduler).availability is AvailabilityMixin.availability
            and 'availability_by_range' not in vars(scheduler.queries)
            and type(scheduler.queries).availability_by_range is Queries.availability_by_range
            and self.exposes_everything and scheduler.queries.exposes_everything()
        )
        if plain:
            first = min(a._start for a in candidates)
            last = max(a._end for a in candidates)
            self.availabilities = availability_rows.mean_by_span(
                scheduler.session, first, last, [scheduler.resource])

    def __call__(self, allocation: Allocation, taken: set[datetime] | None = None) -> bool:
        return self._shown(allocation) and self._has_room(allocation, taken)

    def _shown(self, allocation: Allocation) -> bool:
        if not (self.exposes_everything or self.scheduler.is_allocation_exposed(allocation)):
            return False
        a_start, a_end, raster = allocation._start, allocation._end, allocation.raster
        checked = self.window_checked(a_start, a_end, raster)
        if not (checked or self.window.overlaps(a_start, a_end, raster)):
            return False
        if self.days is not None and allocation.display_start().weekday() not in self.days:
            return False
        return self.whole_day == 'any' or allocation.whole_day == (self.whole_day == 'yes')

    def _has_room(self, allocation: Allocation, taken: set[datetime] | None) -> bool:
        if self.minspots and 0 < allocation.quota_limit < self.minspots:
            return False
        if self.available_only:
            s, e = self.window.bounds(allocation._start, allocation._end)
            if not self._has_free_spot(allocation, s, e, taken):
                return False
        if self.minspots:
            if self.availabilities is not None:
                availability = self.availabilities[allocation._start]
            else:
                # Looked up on the instance: consumers replace it.
                availability = self.scheduler.availability(allocation.start, allocation.end)
            if self.minspots / allocation.quota * 100 > availability:
                return False
        return True

    def _has_free_spot(
        self, allocation: Allocation, start: datetime, end: datetime, taken: set[datetime] | None
    ) -> bool:
        """``allocation.find_spot(start, end) is not None`` (the window meets
        the master), from the starts of its own blocking slots read with it
        and, for a quota, one count of all its spots (``Spots.usage``, the SQL
        form of the same rule). A host's own ``find_spot`` or
        ``is_available`` is asked instead."""
        kind = type(allocation)
        ours = (
            (kind.find_spot, kind.is_available) == OWN_SPOT_RULE
            and not {'find_spot', 'is_available'} & vars(allocation).keys()
        )
        if taken is None or not ours:
            return allocation.find_spot(start, end) is not None
        if is_free(allocation, start, end, taken):
            return True
        if allocation.quota == 1:
            return False
        return self.scheduler._engine.spots.usage(allocation, start, end).resource is not None
