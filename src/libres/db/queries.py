"""Resource-independent queries: ranges, availability and cart sessions.

Every datetime given to these methods must be timezone-aware: unlike the
scheduler, ``Queries`` has no zone to interpret naive values in.
"""

from __future__ import annotations

import logging
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import groupby
from typing import Any, Literal, TypeVar, overload

from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.orm import Query, lazyload

from libres.context.core import ContextServicesMixin
from libres.context.replicas import replica_read
from libres.db import availability_rows
from libres.db.models import Allocation, Reservation, ReservedSlot
from libres.db.models.allocation import partition_flags
from libres.db.overlap import on_resource_overlapping, overlaps
from libres.modules import clock, errors, events, validation
from libres.modules.dates import utcnow
from libres.modules.rasterizer import MIN_RASTER, iterate_span, rasterize_span

log = logging.getLogger('libres')

T = TypeVar('T')
DatePair = tuple[datetime, datetime]
SESSION_EXPIRY = timedelta(minutes=15)


class Queries(ContextServicesMixin):
    """Helpers that work across resources, bound to a context for the session."""

    def __init__(self, context: Any) -> None:
        self.context = context

    # --- ranges ---------------------------------------------------------------

    def all_allocations_in_range(self, start: datetime, end: datetime) -> Query[Allocation]:
        """Every allocation in the database overlapping `[start, end]` (both ends inclusive).

        Of any resource, masters and mirrors alike.

        :param start: an aware `datetime` (`Queries` has no zone to read naive ones in).
        :param end: likewise.
        :returns: a `Query` of `Allocation`, not yet run and unordered.
        :raises InvalidArgumentType: a date is not a `datetime`.
        :raises NaiveDatetimeRefused: a date is naive (a `NotTimezoneAware`).
        """
        _check_range(start, end)
        return self.allocations_in_range(self.session.query(Allocation), start, end)

    @staticmethod
    def allocations_in_range(query: Query[T], start: datetime, end: datetime) -> Query[T]:
        """The query, limited to allocations overlapping `[start, end]` (both ends inclusive).

        :param query: a `Query` of `Allocation` (or selecting its columns).
        :param start: a `datetime`; give aware ones (`Queries` has no zone to
            read naive ones in).
        :param end: likewise.
        :returns: the filtered `Query`, not yet run.
        :raises InvalidArgumentType: `query` is not a `Query`, or a date not a `datetime`.
        """
        _check_query(query)
        validation.check_datetime(start, 'start')
        validation.check_datetime(end, 'end')
        return query.filter(overlaps(start, end))

    @staticmethod
    def overlapping_allocations(query: Query[T], dates: Iterable[DatePair]) -> Query[T]:
        """The query, limited to allocations overlapping any of the ranges, in one statement.

        :param query: a `Query` of `Allocation`.
        :param dates: an iterable of `(start, end)` pairs of aware `datetime`s;
            an empty one matches nothing.
        :returns: the filtered `Query`, not yet run.
        :raises InvalidArgumentType: `query` is not a `Query`, or `dates` not
            pairs of `datetime`s.
        """
        _check_query(query)
        dates = list(dates) if not isinstance(dates, (str, bytes)) and isinstance(dates, Iterable) else dates
        validation.check_date_pairs(dates)
        clauses = [overlaps(start, end) for start, end in dates]
        return query.filter(or_(*clauses) if clauses else false())

    # --- availability ---------------------------------------------------------

    @staticmethod
    def availability_by_allocations(allocations: Iterable[Allocation]) -> float:
        """The mean availability, in percent (0–100), of masters and mirrors.

        Mirrors never written count as completely free: each master adds its
        quota to the spots expected. Reads the given objects only.

        :param allocations: an iterable of `Allocation`.
        :returns: a `float`; `0` when no master is among them.
        :raises InvalidArgumentType: not an iterable of `Allocation`.
        """
        total = 0.0
        count = 0
        expected = 0
        allocations = _allocations(allocations)
        for allocation in allocations:
            total += allocation.availability
            count += 1
            if allocation.is_master:
                expected += allocation.quota
        return availability_rows.mean_of_spots(total, count, expected)

    def _exposed_in_range(
        self, start: datetime, end: datetime, resources: Iterable[uuid.UUID]
    ) -> list[Allocation]:
        query = self.all_allocations_in_range(start, end).filter(
            Allocation.mirror_of.in_(list(resources))
        ).order_by(Allocation._start)
        return [a for a in query if self.is_allocation_exposed(a)]

    @replica_read
    def availability_by_range(
        self, start: datetime, end: datetime, resources: Iterable[uuid.UUID]
    ) -> float:
        """The mean availability, in percent (0–100), of the resources' allocations in the range.

        Every spot counts, mirrors not written yet as free; allocations the
        context's exposure hides are left out. Read-only; runs on a replica when
        one is configured.

        :param start: an aware `datetime` (`Queries` has no zone to read naive ones in).
        :param end: likewise.
        :param resources: an iterable of resource UUIDs.
        :returns: a `float` (0 when no allocation lies in the range).
        :raises InvalidArgumentType: a date is not a `datetime`, or `resources` not a list.
        :raises NaiveDatetimeRefused: a date is naive.
        :raises InvalidUUID: a resource is not a UUID.
        """
        _check_range(start, end)
        resources = list(resources) if isinstance(resources, (list, tuple, set, frozenset)) else resources
        validation.check_uuids(resources, 'resources')
        if self.exposes_everything():
            return availability_rows.mean_in_range(self.session, start, end, resources)
        return self.availability_by_allocations(self._exposed_in_range(start, end, resources))

    @replica_read
    def availability_by_day(
        self, start: datetime, end: datetime, resources: Iterable[uuid.UUID]
    ) -> dict[date, tuple[float, set[uuid.UUID]]]:
        """The availability per day of the resources' allocations in the range.

        Keyed by the UTC date of each allocation's start (kept from the original,
        whatever the local date); hidden allocations (exposure) are left out.
        Read-only; runs on a replica when one is configured.

        :param start: an aware `datetime` (`Queries` has no zone to read naive ones in).
        :param end: likewise.
        :param resources: an iterable of resource UUIDs.
        :returns: a dict of `date` to `(availability in percent, set of the
            resources with allocations that day)`.
        :raises InvalidArgumentType: a date is not a `datetime`.
        :raises NaiveDatetimeRefused: a date is naive.
        :raises InvalidUUID: a resource is not a UUID.
        """
        _check_range(start, end)
        resources = list(resources) if isinstance(resources, (list, tuple, set, frozenset)) else resources
        validation.check_uuids(resources, 'resources')
        if self.exposes_everything():
            return availability_rows.by_utc_day(self.session, start, end, resources)
        result: dict[date, tuple[float, set[uuid.UUID]]] = {}
        exposed = self._exposed_in_range(start, end, resources)
        for day, allocations in groupby(exposed, key=lambda a: a._start.date()):
            members = list(allocations)
            result[day] = (
                self.availability_by_allocations(members),
                {a.mirror_of for a in members},
            )
        return result

    @overload
    def reserved_slots_by_range(
        self, start: datetime, end: datetime, resource: uuid.UUID,
        blocking_resources: Iterable[uuid.UUID], with_buffers: Literal[False] = False,
    ) -> tuple[dict[datetime, int], set[datetime]]: ...

    @overload
    def reserved_slots_by_range(
        self, start: datetime, end: datetime, resource: uuid.UUID,
        blocking_resources: Iterable[uuid.UUID], with_buffers: Literal[True],
    ) -> tuple[dict[datetime, int], set[datetime], set[datetime]]: ...

    @replica_read
    def reserved_slots_by_range(
        self,
        start: datetime,
        end: datetime,
        resource: uuid.UUID,
        blocking_resources: Iterable[uuid.UUID],
        with_buffers: bool = False,
    ) -> tuple[dict[datetime, int], set[datetime]] | tuple[
        dict[datetime, int], set[datetime], set[datetime]
    ]:
        """What the resources booked in the range, per 5-minute slice.

        Slots of mirrors count too (the original saw only master resources, so
        bookings that landed on mirrors went unnoticed). Read-only; runs on a
        replica when one is configured.

        :param start: an aware `datetime` (`Queries` has no zone to read naive ones in).
        :param end: likewise.
        :param resource: the scheduler's resource UUID.
        :param blocking_resources: an iterable of further resource UUIDs.
        :param with_buffers: also return the slices kept free as buffers
            around bookings.
        :returns: `(reserved, blocked)`: a dict of slice start (aware UTC) to the
            number of reservation slots there (bookings and live holds, never
            buffers nor expired holds), and the set of slice starts a blocker
            holds; with `with_buffers`, third the set of buffer slice starts.
        :raises InvalidArgumentType: a date is not a `datetime`.
        :raises NaiveDatetimeRefused: a date is naive.
        :raises InvalidUUID: a resource is not a UUID.
        """
        _check_range(start, end)
        validation.check_uuid(resource, 'resource')
        validation.check_uuids(list(blocking_resources), 'blocking resources')
        start, end = rasterize_span(start, end, MIN_RASTER)
        slots = self.session.execute(_slots_in_range(), availability_rows.parameters(
            start, end, [resource, *blocking_resources]
        )).all()
        step = timedelta(minutes=MIN_RASTER)
        reserved: dict[datetime, int] = {}
        blocked: set[datetime] = set()
        buffers: set[datetime] = set()
        for slot_start, slot_end, source_type, buffer in slots:
            # The first slice of the range's grid at or after the slot start.
            skipped = max(0, -((start - slot_start) // step))
            slice_start = start + skipped * step
            while slice_start < slot_end and slice_start <= end:
                if buffer:
                    buffers.add(slice_start)
                elif source_type == 'blocker':
                    blocked.add(slice_start)
                else:
                    reserved[slice_start] = reserved.get(slice_start, 0) + 1
                slice_start += step
        if with_buffers:
            return reserved, blocked, buffers
        return reserved, blocked

    def availability_and_partitions_by_allocations(
        self,
        allocations: Sequence[Allocation],
        resource: uuid.UUID,
        blocking_resources: Iterable[uuid.UUID],
        normalize_dst: bool = True,
    ) -> Iterator[tuple[Allocation, float, list[tuple[float, bool]]]]:
        """Each allocation with its availability, what blocking resources booked counted as taken.

        Blocked time shows as taken but leaves the denominator of the share.
        A generator: the arguments are checked when iteration starts.

        :param allocations: a sequence of `Allocation`.
        :param resource: the scheduler's resource UUID.
        :param blocking_resources: an iterable of resource UUIDs.
        :param normalize_dst: `True` (default) measures a partly available
            allocation on a DST change day as if the day had 24 hours.
        :returns: an iterator of `(allocation, availability in percent,
            partitions)`, partitions a list of `(percent, taken)` pairs.
        :raises InvalidArgumentType: not a sequence of `Allocation`.
        :raises InvalidUUID: a resource is not a UUID.
        :raises NotSupported: while iterating, for a partly available allocation
            with a quota above 1.
        """
        allocations = _allocations(allocations)
        validation.check_uuid(resource, 'resource')
        if not allocations:
            return
        reserved, blocked = self.reserved_slots_by_range(
            min(a._start for a in allocations),
            max(a._end for a in allocations),
            resource,
            blocking_resources,
        )
        taken = TakenSlices(reserved, blocked)
        for allocation in allocations:
            yield (allocation, *_blocking_availability(allocation, taken, normalize_dst))

    @replica_read
    def allocations_with_availability_by_range(
        self,
        start: datetime,
        end: datetime,
        resource: uuid.UUID,
        blocking_resources: Iterable[uuid.UUID],
        normalize_dst: bool = True,
    ) -> Iterator[tuple[Allocation, float, list[tuple[float, bool]]]]:
        """Each exposed master of `resource` in the range, with what blocking resources booked counted.

        :param start: an aware `datetime` (`Queries` has no zone to read naive ones in).
        :param end: likewise.
        :param resource: the scheduler's resource UUID.
        :param blocking_resources: an iterable of resource UUIDs whose bookings
            count as taken.
        :param normalize_dst: `True` (default) measures a partly available
            allocation on a DST change day as if the day had 24 hours.
        :returns: an iterator of `(allocation, availability, partitions)` in start
            order: the master, its free share in percent and a list of
            `(percent of the allocation, taken)` pairs.
        :raises InvalidUUID: a resource is not a UUID.
        :raises InvalidArgumentType: a date is not a `datetime`.
        :raises NaiveDatetimeRefused: a date is naive.
        :raises NotSupported: while iterating, for a partly available
            allocation with a quota above 1.
        """
        validation.check_uuid(resource, 'resource')
        # The availability comes from one read of the slots in the range;
        # the allocations' own slot collections load only if touched.
        query = self.all_allocations_in_range(start, end).filter(
            Allocation.mirror_of == resource, on_resource_overlapping(resource, start, end)
        ).options(lazyload(Allocation.reserved_slots)).order_by(Allocation._start)
        exposed = [a for a in query if self.is_allocation_exposed(a)]
        return self.availability_and_partitions_by_allocations(
            exposed, resource, blocking_resources, normalize_dst
        )

    # --- browser sessions -----------------------------------------------------

    def reservations_by_session(self, session_id: uuid.UUID | None) -> Query[Reservation]:
        """The reservations (of any resource) of a browser session, oldest first.

        An empty session id logs a warning (`'empty session id'`) and gives a
        query that matches nothing, never every reservation.

        :param session_id: the session UUID (or a string holding one), or `None`.
        :returns: a `Query` of `Reservation`, not yet run.
        :raises InvalidUUID: the session id is not a UUID.
        """
        validation.check_optional_uuid(session_id or None, 'session id')
        query = self.session.query(Reservation)
        if not session_id:
            # Never hand out every reservation because a session id was lost.
            log.warning('empty session id')
            return query.filter(false())
        return query.filter(Reservation.session_id == session_id).order_by(Reservation.created)

    def confirm_reservations_for_session(
        self, session_id: uuid.UUID, token: uuid.UUID | None = None
    ) -> None:
        """Confirm a session's reservations (or those of one token): they leave the cart.

        Sets `session_id` to `None` on each (written with the next flush);
        confirming does not approve. Fires `on_reservations_confirmed` with the
        rows and the session id.

        :param session_id: the session UUID (or a string holding one).
        :param token: a reservation token to confirm only its rows, or `None` for all.
        :raises LibresAssertionError: the session id is empty.
        :raises InvalidUUID: the session id or the token is not a UUID.
        :raises NoReservationsToConfirm: nothing of the session (and token) is left.
        """
        if not session_id:
            raise errors.LibresAssertionError('a session id is required')
        validation.check_uuid(session_id, 'session id')
        validation.check_optional_uuid(token, 'token')
        query = self.reservations_by_session(session_id)
        if token:
            query = query.filter(Reservation.token == token)
        reservations = query.all()
        if not reservations:
            raise errors.NoReservationsToConfirm(f'session {session_id} has no reservations to confirm')
        for reservation in reservations:
            reservation.session_id = None
        events.on_reservations_confirmed(self.context, reservations, session_id)

    def remove_reservation_from_session(self, session_id: uuid.UUID, token: uuid.UUID) -> None:
        """Remove a token's reservations from a browser session, with their slots.

        The rows go through the unit of work, their slots (of any resource) by a
        bulk delete; the other reservations of the session get a new `modified`
        time, so the cart's expiry restarts. Then the session is expired. No
        event fires.

        :param session_id: the session UUID (or a string holding one).
        :param token: the reservation token (a UUID or a string holding one).
        :raises LibresAssertionError: the session id or the token is empty.
        :raises InvalidUUID: the session id or the token is not a UUID.
        :raises RecordNotFound: the session has no reservation of this token (a
            SQLAlchemy `NoResultFound` too).
        """
        if not session_id or not token:
            raise errors.LibresAssertionError('a session id and a token are required')
        validation.check_uuid(session_id, 'session id')
        validation.check_uuid(token, 'token')
        reservations = self.reservations_by_session(session_id).filter(
            Reservation.token == token
        ).all()
        if not reservations:
            raise errors.RecordNotFound(f'session {session_id} has no reservation with token {token}')
        for reservation in reservations:
            self.session.delete(reservation)
        self.session.query(ReservedSlot).filter(
            ReservedSlot.reservation_token == token,
            ReservedSlot.source_type == 'reservation',
        ).delete(synchronize_session='fetch')
        # The user is active: restart the expiry clock of what is left.
        self.session.query(Reservation).filter(
            Reservation.session_id == session_id
        ).update({Reservation.modified: utcnow()}, synchronize_session='fetch')
        self.session.expire_all()

    def find_expired_reservation_sessions(
        self, expiration_date: datetime | None
    ) -> list[uuid.UUID]:
        """The browser sessions whose pending reservations saw no activity since `expiration_date`.

        A session has expired when the latest `created` or `modified` time of its
        pending reservations lies strictly before `expiration_date`. Over the
        whole database; read-only.

        :param expiration_date: an aware `datetime`, or `None` for 15 minutes ago.
        :returns: a list of session UUIDs.
        :raises InvalidArgumentType: the date is not a `datetime`.
        :raises NaiveDatetimeRefused: the date is naive.
        """
        if expiration_date is None:
            expiration_date = utcnow() - SESSION_EXPIRY
        validation.check_datetime(expiration_date, 'expiration date')
        _check_aware(expiration_date, 'expiration date')
        last_created = func.max(Reservation.created)
        last_activity = func.greatest(
            last_created, func.coalesce(func.max(Reservation.modified), last_created)
        )
        query = (
            select(Reservation.session_id)
            .where(Reservation.session_id.is_not(None), Reservation.status == 'pending')
            .group_by(Reservation.session_id)
            .having(last_activity < expiration_date)
        )
        return list(self.session.scalars(query))

    def remove_expired_reservation_sessions(
        self, expiration_date: datetime | None = None
    ) -> list[uuid.UUID]:
        """Delete the expired browser sessions: all their reservations with their slots.

        Bulk deletes (approved rows still carrying the session id go too), then
        the session is expired; allocations are untouched. No event fires.
        The slots of every expired hold go too (their rows stay pending,
        without a hold, until their session expires).

        :param expiration_date: as for `find_expired_reservation_sessions`
            (`None`: 15 minutes ago).
        :returns: the ids of the sessions removed, a list of UUIDs.
        :raises InvalidArgumentType: the date is not a `datetime`.
        :raises NaiveDatetimeRefused: the date is naive.
        """
        expired = self.find_expired_reservation_sessions(expiration_date)
        # Holds that ran out release their spots, whoever's cart they were in
        # (looked for first: a host's transaction manager sees a delete only
        # when there is something to delete, as before holds existed).
        ran_out = self.session.query(ReservedSlot).filter(ReservedSlot.held_until <= clock.now())
        if self.session.query(ran_out.exists()).scalar():
            ran_out.delete(synchronize_session='fetch')
            self.session.expire_all()
        if expired:
            tokens = select(Reservation.token).where(Reservation.session_id.in_(expired))
            self.session.query(ReservedSlot).filter(
                ReservedSlot.source_type == 'reservation',
                ReservedSlot.reservation_token.in_(tokens),
            ).delete(synchronize_session='fetch')
            self.session.query(Reservation).filter(
                Reservation.session_id.in_(expired)
            ).delete(synchronize_session='fetch')
            self.session.expire_all()
        return expired


@lru_cache(maxsize=1)
def _slots_in_range() -> Select[Any]:
    """Start, end and source type of the slots overlapping [start, end] whose
    allocations belong to the resources (parameters ``start``, ``end``,
    ``resources``; built once).

    No join (see ``availability_rows.possible_slots``): the slots come from
    the primary key index on the resources of the allocations in the range
    (a slot lies within its allocation, on its resource: a constraint
    trigger enforces it), and each is checked against its own allocation by
    that allocation's primary key.
    """
    start, end, resources = availability_rows.START, availability_rows.END, availability_rows.RESOURCES
    allocations = availability_rows.allocations_in_range(start, end, resources)
    owner = select(Allocation.mirror_of).where(Allocation.id == ReservedSlot.allocation_id)
    return availability_rows.possible_slots(
        allocations, ReservedSlot.start, ReservedSlot.end, ReservedSlot.source_type,
        ReservedSlot.buffer, booked_time_only=False,
    ).where(
        ReservedSlot.start <= end,
        ReservedSlot.end >= start,
        owner.scalar_subquery().in_(resources),
    )


class TakenSlices:
    """The 5-minute slices a range's slots take (``reserved_slots_by_range``),
    with their starts sorted, so that an allocation looks at the taken
    slices inside it only, not at each of its own slices."""

    def __init__(self, reserved: dict[datetime, int], blocked: set[datetime]) -> None:
        self.reserved = reserved
        self.blocked = blocked
        self._starts = sorted(reserved.keys() | blocked)

    def most_used(self, start: datetime, end: datetime, quota: int) -> int:
        """The most spots taken on any slice of the span (a blocked one takes
        the whole quota): the slices ``iterate_span(start, end, 5)`` walks."""
        first, last = rasterize_span(start, end, MIN_RASTER)
        starts = self._starts
        used = 0
        for index in range(bisect_left(starts, first), bisect_right(starts, last)):
            slice_start = starts[index]
            used = max(used, quota if slice_start in self.blocked else self.reserved.get(slice_start, 0))
        return used


def _blocking_availability(
    allocation: Allocation,
    taken: TakenSlices,
    normalize_dst: bool,
) -> tuple[float, list[tuple[float, bool]]]:
    quota = allocation.quota
    reserved, blocked = taken.reserved, taken.blocked
    if not allocation.partly_available:
        left = max(0, quota - taken.most_used(allocation._start, allocation._end, quota))
        return 100.0 * left / quota, [(100.0, left == 0)]
    if quota > 1:
        raise errors.NotSupported(
            'blocking availability of a partly available allocation with quota > 1'
        )
    slots = allocation.normalized_slots() if normalize_dst else allocation.all_slots()
    flags: list[bool] = []
    blocked_count = reserved_count = 0
    for slot_start, slot_end in slots:
        if slot_start is None or slot_end is None:
            flags.append(True)
            reserved_count += 1
            continue
        slices = [s for s, _ in iterate_span(slot_start, slot_end, MIN_RASTER)]
        if any(s in blocked for s in slices):
            # Blocked time shows as taken but leaves the denominator.
            flags.append(True)
            blocked_count += 1
        elif any(s in reserved for s in slices):
            flags.append(True)
            reserved_count += 1
        else:
            flags.append(False)
    total = len(flags)
    if blocked_count == total:
        availability = 0.0
    elif reserved_count == 0:
        availability = 100.0
    else:
        total -= blocked_count
        if total <= reserved_count:
            availability = 0.0
        else:
            availability = 100.0 - 100.0 * reserved_count / total
    return availability, partition_flags(flags)


def _check_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise errors.NaiveDatetimeRefused(
            f'the {name} {value!r} has no time zone: Queries methods need aware datetimes'
        )


def _check_range(start: Any, end: Any) -> None:
    """Aware datetimes: ``Queries`` has no zone to read naive ones in."""
    for name, value in (('start', start), ('end', end)):
        validation.check_datetime(value, name)
        _check_aware(value, name)


def _check_query(query: Any) -> None:
    if not isinstance(query, Query):
        raise errors.InvalidArgumentType(f'expected a Query, got {query!r}')


def _allocations(allocations: Any) -> list[Allocation]:
    if isinstance(allocations, (str, bytes)) or not isinstance(allocations, Iterable):
        raise errors.InvalidArgumentType(f'expected allocations, got {allocations!r}')
    checked: list[Allocation] = []
    for allocation in allocations:
        if not isinstance(allocation, Allocation):
            raise errors.InvalidArgumentType(f'expected allocations, got {allocation!r}')
        checked.append(allocation)
    return checked
