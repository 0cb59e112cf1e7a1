"""Who a scheduler is, and the record queries and look-ups of its resource.

The front of ``libres.db.records`` and the wiring of the booking engine
(``libres.db.booking``): every scheduler part asks the engine, none shares
a private helper with another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Self, cast

from sqlalchemy.orm import Query

from libres.context.core import ContextServicesMixin
from libres.db.booking.dates import DatePair, Dates
from libres.db.booking.engine import Engine
from libres.db.booking.spots import free_siblings
from libres.db.lookups import the_one
from libres.db.models import (
    Allocation,
    Reservation,
    ReservationBlocker,
    ReservedSlot,
)
from libres.db.queries import Queries
from libres.db.records import AllocationT, ReservationT
from libres.modules import errors, validation

if TYPE_CHECKING:
    from libres.context.core import Context

__all__ = ('AllocationT', 'DatePair', 'Dates', 'ReservationT', 'SchedulerBase')

# The defaults of the class arguments, typed so that a scheduler built
# without them is a Scheduler[Allocation, Reservation].
_ALLOCATION: Any = Allocation
_RESERVATION: Any = Reservation


class SchedulerBase(ContextServicesMixin, Generic[AllocationT, ReservationT]):
    """What every part of the scheduler builds on: who it is and what it owns."""

    def __init__(
        self,
        context: Context,
        name: str | uuid.UUID,
        timezone: str,
        blocking_names: Iterable[str] = (),
        allocation_cls: type[AllocationT] = _ALLOCATION,
        reservation_cls: type[ReservationT] = _RESERVATION,
    ) -> None:
        # Refused here, not at the first call that reads a date.
        validation.check_timezone(timezone)
        if not isinstance(name, (str, uuid.UUID)):
            raise errors.InvalidArgumentType(f'the scheduler name must be text or a UUID, got {name!r}')
        # Seed-style positional calls pass the model classes where 1.4.0 has
        # blocking_names; accept both.
        if isinstance(blocking_names, type) and issubclass(blocking_names, Allocation):
            if reservation_cls is Reservation and isinstance(allocation_cls, type) \
                    and issubclass(allocation_cls, Reservation):
                reservation_cls = allocation_cls
            allocation_cls, blocking_names = cast('type[AllocationT]', blocking_names), ()
        validation.check_names(blocking_names, 'blocking_names')
        self.context = context
        self.queries = Queries(context)
        self.name = name
        self.timezone = timezone
        self.blocking_names = tuple(blocking_names)
        self.allocation_cls = allocation_cls
        self.reservation_cls = reservation_cls
        # The engine reads name, zone and session through this scheduler on
        # every call, so it follows changes to them (and each thread's session).
        self._engine: Engine[AllocationT, ReservationT] = Engine.for_scope(self)

    def __repr__(self) -> str:
        return f'<Scheduler {self.context.name}/{self.name} ({self.timezone})>'

    # --- identity -------------------------------------------------------------

    @property
    def resource(self) -> uuid.UUID:
        """The resource UUID, derived from the context and scheduler names."""
        # Remembered per name: it is read several times in every booking.
        cached = self.__dict__.get('_resource_of_name')
        if cached is None or cached[0] != self.name:
            cached = self.__dict__['_resource_of_name'] = (self.name, self.generate_uuid(self.name))
        return cached[1]

    @cached_property
    def blocking_resources(self) -> frozenset[uuid.UUID]:
        """The resource UUIDs of `blocking_names`, whose bookings also block this scheduler (cached)."""
        return frozenset(self.generate_uuid(name) for name in self.blocking_names)

    def clone(self) -> Self:
        """A new scheduler of the same context, name, zone, blocking names and model classes.

        Nothing is shared with this one but the context (and so its session):
        cached services are looked up afresh.

        :returns: a scheduler of the same class as this one.
        """
        return type(self)(
            self.context,
            self.name,
            self.timezone,
            blocking_names=self.blocking_names,
            allocation_cls=self.allocation_cls,
            reservation_cls=self.reservation_cls,
        )

    def clear_cache(self) -> None:
        """Forget the cached services, the resource UUIDs derived from the names
        and the cached services of `queries` (after changing the context)."""
        super().clear_cache()
        for name in ('blocking_resources', '_resource_of_name'):
            self.__dict__.pop(name, None)
        self.queries.clear_cache()

    def setup_database(self) -> None:
        """Create the newest schema and record its revision.

        A database made by an older libres (1.4.0 included) is migrated instead;
        one at the newest revision is left alone. Runs in a transaction of its
        own on the session's engine (committed there, not in the session), under
        an advisory lock so two processes do not migrate at once.
        """
        from libres.db import migrate

        migrate.ensure_schema(self.session.get_bind().engine)

    # --- dates ----------------------------------------------------------------

    def _prepare_date(self, value: datetime) -> datetime:
        """Naive values are in the scheduler's zone; the result is aware UTC."""
        return self._engine.dates.date(value)

    def _prepare_range(self, start: datetime, end: datetime) -> DatePair:
        """A start and an end as aware UTC (libres 1.4.0's name)."""
        return self._prepare_date(start), self._prepare_date(end)

    # --- record sets ----------------------------------------------------------

    def managed_allocations(self) -> Query[AllocationT]:
        """Every allocation this scheduler owns: masters and the mirrors written so far.

        :returns: a `Query` of `Allocation` (`mirror_of` is this scheduler's
            resource), not yet run and unordered.
        """
        return self._engine.records.managed_allocations()

    def blocking_allocations(self) -> Query[AllocationT]:
        """The allocations of the blocking resources (`blocking_names`), masters and mirrors.

        :returns: a `Query` of `Allocation`, not yet run; it matches nothing
            when the scheduler has no blocking names.
        """
        return self._engine.records.blocking_allocations()

    def visible_allocations(self) -> Query[AllocationT]:
        """The allocations this scheduler owns plus those of its blocking resources.

        :returns: a `Query` of `Allocation` (masters and mirrors), not yet run.
        """
        return self._engine.records.visible_allocations()

    def managed_reserved_slots(self) -> Query[ReservedSlot]:
        """The reserved slots (of reservations and blockers) on this scheduler's allocations.

        :returns: a `Query` of `ReservedSlot`, not yet run.
        """
        return self._engine.records.managed_reserved_slots()

    def managed_reservations(self) -> Query[ReservationT]:
        """The reservations of this scheduler's resource, pending and approved.

        :returns: a `Query` of `Reservation`, not yet run.
        """
        return self._engine.records.managed_reservations()

    def visible_reservations(self) -> Query[ReservationT]:
        """The reservations of this scheduler's resource and of its blocking resources.

        :returns: a `Query` of `Reservation`, not yet run.
        """
        return self._engine.records.visible_reservations()

    def managed_blockers(self) -> Query[ReservationBlocker]:
        """The blockers of this scheduler's resource.

        :returns: a `Query` of `ReservationBlocker`, not yet run.
        """
        return self._engine.records.managed_blockers()

    def visible_blockers(self) -> Query[ReservationBlocker]:
        """The blockers of this scheduler's resource and of its blocking resources.

        :returns: a `Query` of `ReservationBlocker`, not yet run.
        """
        return self._engine.records.visible_blockers()

    def extinguish_managed_records(self) -> None:
        """Delete everything this scheduler owns: reservations, blockers, slots and allocations.

        In that order, so nothing points nowhere. Bulk deletes, as in libres
        1.4.0: no event fires; objects of them loaded in the session are marked
        deleted (`synchronize_session='fetch'`), then the session is expired.
        Nothing is committed.
        """
        self.managed_reservations().delete(synchronize_session='fetch')
        self.managed_blockers().delete(synchronize_session='fetch')
        self.managed_reserved_slots().delete(synchronize_session='fetch')
        self.managed_allocations().delete(synchronize_session='fetch')
        self.session.expire_all()

    # --- slot, reservation and blocker look-ups -------------------------------

    def reserved_slots_by_type(self, token: uuid.UUID, type: str | None = None) -> Query[ReservedSlot]:
        """The reserved slots of a token on this scheduler's allocations.

        :param token: the reservation or blocker token, a UUID or a string holding one.
        :param type: `'reservation'`, `'blocker'`, or `None` for both.
        :returns: a `Query` of `ReservedSlot`, not yet run.
        :raises LibresAssertionError: the token is empty.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: `type` is not text.
        """
        return self._engine.records.reserved_slots_by_type(token, type)

    def reserved_slots_by_reservation(self, token: uuid.UUID, id: int | None = None) -> Query[ReservedSlot]:
        """The reserved slots of a token's reservations, or of one of them.

        :param token: the reservation token, a UUID or a string holding one.
        :param id: the id (an `int`) of one reservation of the token, or `None` for all.
        :returns: a `Query` of `ReservedSlot`, not yet run (pending reservations have none).
        :raises LibresAssertionError: the token is empty.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._engine.records.reserved_slots_by_source('reservation', token, id)

    def reserved_slots_by_blocker(self, token: uuid.UUID, id: int | None = None) -> Query[ReservedSlot]:
        """The reserved slots of a token's blockers, or of one of them.

        :param token: the blocker token, a UUID or a string holding one.
        :param id: the id (an `int`) of one blocker of the token, or `None` for all.
        :returns: a `Query` of `ReservedSlot`, not yet run.
        :raises LibresAssertionError: the token is empty.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._engine.records.reserved_slots_by_source('blocker', token, id)

    def reservations_by_token(self, token: uuid.UUID | str, id: int | None = None) -> Query[ReservationT]:
        """This scheduler's reservations (pending and approved) of a token.

        :param token: a UUID or a string holding one.
        :param id: the id (an `int`) of one reservation of the token; `None` (or 0) for all.
        :returns: a `Query` of `Reservation`, not yet run; empty for an unknown token.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._engine.records.reservations_by_token(token, id)

    def blockers_by_token(self, token: uuid.UUID | str, id: int | None = None) -> Query[ReservationBlocker]:
        """This scheduler's blockers of a token.

        :param token: a UUID or a string holding one.
        :param id: the id (an `int`) of one blocker of the token; `None` (or 0) for all.
        :returns: a `Query` of `ReservationBlocker`, not yet run; empty for an unknown token.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._engine.records.blockers_by_token(token, id)

    def reservations_by_group(self, group: uuid.UUID) -> Query[ReservationT]:
        """This scheduler's reservations of every token that reserved the group.

        All rows of such a token are included, also those targeting other groups
        or single allocations.

        :param group: the allocation group, a UUID or a string holding one.
        :returns: a `Query` of `Reservation`, not yet run.
        :raises InvalidUUID: the group is not a UUID.
        """
        return self._engine.records.reservations_by_group(group)

    def reservations_by_allocation(self, allocation_id: int) -> Query[ReservationT]:
        """The reservations of the allocation's group (see `reservations_by_group`).

        :param allocation_id: the id (an `int`) of an allocation of this scheduler.
        :returns: a `Query` of `Reservation`, not yet run.
        :raises RecordNotFound: this scheduler has no allocation with this id.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        master = self.allocation_by_id(allocation_id)
        return self.reservations_by_group(master.group)

    # --- allocation look-ups --------------------------------------------------

    def allocation_by_id(self, id: int) -> AllocationT:
        """The allocation of this scheduler with this id (a master or a written mirror).

        :param id: the allocation id, an `int`.
        :returns: the `Allocation`; the query runs at once.
        :raises RecordNotFound: this scheduler has no such allocation (also a
            SQLAlchemy `NoResultFound`, as in 1.4.0).
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._engine.records.allocation_by_id(id)

    def allocations_by_ids(self, ids: Iterable[int]) -> Query[AllocationT]:
        """This scheduler's allocations with the given ids, in start order.

        :param ids: an iterable of `int` ids (not a string); unknown ids are skipped.
        :returns: a `Query` of `Allocation`, not yet run.
        :raises InvalidArgumentType: `ids` is not an iterable of whole numbers.
        """
        return self._engine.records.allocations_by_ids(ids)

    def allocations_by_group(self, group: uuid.UUID, masters_only: bool = True) -> Query[AllocationT]:
        """This scheduler's allocations of one group (`allocations_by_groups([group])`).

        :param group: the group, a UUID or a string holding one.
        :param masters_only: `True` (default) for the masters only, `False` to
            include the written mirrors.
        :returns: a `Query` of `Allocation`, not yet run and unordered.
        :raises InvalidUUID: the group is not a UUID.
        """
        return self.allocations_by_groups([group], masters_only=masters_only)

    def allocations_by_groups(
        self, groups: Iterable[uuid.UUID], masters_only: bool = True
    ) -> Query[AllocationT]:
        """This scheduler's allocations of any of the groups.

        :param groups: an iterable (not a string) of group UUIDs or strings holding them.
        :param masters_only: `True` (default) for the masters only, `False` to
            include the written mirrors.
        :returns: a `Query` of `Allocation`, not yet run and unordered.
        :raises InvalidArgumentType: `groups` is not an iterable.
        :raises InvalidUUID: a group is not a UUID.
        """
        return self._engine.records.allocations_by_groups(groups, masters_only)

    def allocations_by_reservation(self, token: uuid.UUID, id: int | None = None) -> Query[AllocationT]:
        """The allocations (masters or mirrors) holding the slots of a token's reservations.

        Pending reservations have no slots, so they give nothing; each
        allocation appears once, also in `count()`.

        :param token: the reservation token, a UUID or a string holding one.
        :param id: the id (an `int`) of one reservation of the token, or `None` for all.
        :returns: a `Query` of `Allocation`, not yet run.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._engine.records.allocations_by_source(Reservation, 'reservation', token, id)

    def allocations_by_blocker(self, token: uuid.UUID, id: int | None = None) -> Query[AllocationT]:
        """The allocations (masters or mirrors) holding the slots of a token's blockers.

        Each allocation appears once, also in `count()`.

        :param token: the blocker token, a UUID or a string holding one.
        :param id: the id (an `int`) of one blocker of the token, or `None` for all.
        :returns: a `Query` of `Allocation`, not yet run.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._engine.records.allocations_by_source(ReservationBlocker, 'blocker', token, id)

    def allocations_in_range(
        self, start: datetime, end: datetime, masters_only: bool = True, managed_only: bool = True
    ) -> Query[AllocationT]:
        """The allocations overlapping `[start, end]` (both ends inclusive).

        :param start: a `datetime`; naive values are read in the scheduler's
            zone, aware ones converted.
        :param end: likewise.
        :param masters_only: `True` (default) keeps the masters, `False` adds written mirrors.
        :param managed_only: `True` (default) for this scheduler's allocations,
            `False` to add those of the blocking resources.
        :returns: a `Query` of `Allocation`, not yet run and unordered.
        :raises InvalidArgumentType: `start` or `end` is not a `datetime`.
        """
        start, end = self._prepare_date(start), self._prepare_date(end)
        return self._engine.records.allocations_in_range(start, end, masters_only, managed_only)

    def allocation_by_date(self, start: datetime, end: datetime) -> AllocationT:
        """The one master allocation of this scheduler overlapping `[start, end]`.

        :param start: a `datetime`; naive values are read in the scheduler's
            zone, aware ones converted.
        :param end: likewise.
        :returns: the `Allocation`; the query runs at once.
        :raises RecordNotFound: none overlaps (a SQLAlchemy `NoResultFound` too).
        :raises SeveralRecordsFound: more than one overlaps (a `MultipleResultsFound` too).
        :raises InvalidArgumentType: `start` or `end` is not a `datetime`.
        """
        return the_one(  # type: ignore[no-any-return]
            self.allocations_in_range(start, end), f'allocation from {start} to {end}'
        )

    def allocation_dates_by_group(self, group: uuid.UUID) -> list[Any]:
        """The `(start, end)` of each master allocation of the group.

        :param group: the group, a UUID or a string holding one.
        :returns: a list of rows (`_start`, `_end`), aware UTC, each end 1 µs
            before the full minute as stored; unordered, empty for an unknown group.
        :raises InvalidUUID: the group is not a UUID.
        """
        return self._engine.records.allocation_dates_by_group(group)

    def free_allocations_count(
        self, master_allocation: Allocation, start: datetime, end: datetime
    ) -> int:
        """How many spots (the master and its mirrors) are free for the whole range.

        Imaginary (unwritten) mirrors count as free. Reads the mirrors and their
        slots; writes nothing.

        :param master_allocation: a master `Allocation`.
        :param start: a `datetime` (naive ones are read in the allocation's zone).
        :param end: likewise.
        :returns: the number of free spots, from 0 to the allocation's quota.
        :raises InvalidArgumentType: the master is not an `Allocation`, or a
            date is not a `datetime`.
        :raises LibresAssertionError: the range does not overlap the allocation.
        """
        _check_allocation(master_allocation, 'master_allocation')
        validation.check_datetime(start, 'start')
        validation.check_datetime(end, 'end')
        return free_siblings(master_allocation, start, end)

    # --- checks shared by reservations and blockers -----------------------------

    def allocation_mirrors_by_master(self, master: Allocation) -> list[AllocationT]:
        """The mirrors of a master: always `quota - 1` of them.

        Mirrors not written yet are included as transient (imaginary) objects,
        not added to the session.

        :param master: a master `Allocation`.
        :returns: a list of `Allocation`.
        :raises InvalidArgumentType: the master is not an `Allocation`.
        """
        _check_allocation(master, 'master')
        return [cast(AllocationT, a) for a in master.siblings() if not a.is_master]

    def allocation_dates_by_ids(
        self, ids: Iterable[int], start_time: time | None = None, end_time: time | None = None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Per allocation (in start order): a time of day limited to it.

        A generator: the arguments are checked when iteration starts.

        :param ids: an iterable of `int` allocation ids of this scheduler.
        :param start_time: a `time` of day, or `None` for the allocation's own start.
        :param end_time: a `time` of day, or `None` for the allocation's own end.
        :returns: a generator of `(start, end)`, aware in the allocation's zone,
            each end 1 µs before the limit (the stored form).
        :raises InvalidArgumentType: a time is not a `time`, or `ids` not whole numbers.
        """
        for name, value in (('start_time', start_time), ('end_time', end_time)):
            if value is not None and not isinstance(value, time):
                raise errors.InvalidArgumentType(f'the {name} must be a time of day, got {value!r}')
        for allocation in self.allocations_by_ids(ids):
            start = start_time or allocation.display_start().time()
            end = end_time or allocation.display_end().time()
            limited_start, limited_end = allocation.limit_timespan(start, end)
            yield limited_start, limited_end - timedelta(microseconds=1)

    def manual_approval_required(self, ids: Iterable[int]) -> bool:
        """Whether any of the allocations must be approved by hand (`approve_manually`).

        :param ids: an iterable of `int` allocation ids of this scheduler; unknown
            ids are skipped.
        :returns: `True` if at least one of them has `approve_manually` set.
        :raises InvalidArgumentType: `ids` is not an iterable of whole numbers.
        """
        return any(a.approve_manually for a in self.allocations_by_ids(ids))


def _check_allocation(value: Any, name: str) -> None:
    if not isinstance(value, Allocation):
        raise errors.InvalidArgumentType(f'the {name} must be an Allocation, got {value!r}')
