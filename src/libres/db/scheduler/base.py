"""Identity, record sets and date handling shared by every scheduler part."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, time, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from sqlalchemy import Integer, Select, and_, bindparam, column, exists, func, or_, select, text
from sqlalchemy.orm import Query, aliased, joinedload, lazyload

from libres.context.core import ContextServicesMixin
from libres.db.gc_pause import collector_paused
from libres.db.local_time_rules import refuse_unclear_local_times
from libres.db.lookups import the_one
from libres.db.models import (
    Allocation,
    Reservation,
    ReservationBlocker,
    ReservedSlot,
)
from libres.db.models.reserved_slot import SourceType
from libres.db.models.types.utcdatetime import UTCDateTime
from libres.db.models.types.uuid_type import UUID as UUIDType
from libres.db.overlap import overlap_hint, overlaps
from libres.db.queries import Queries
from libres.modules import errors, validation
from libres.modules.dates import standardize_date
from libres.modules.rasterizer import MIN_RASTER
from libres.modules.utils import flatten, generate_uuids, is_valid_reservation_length, pairs

if TYPE_CHECKING:
    from libres.context.core import Context

DatePair = tuple[datetime, datetime]
#: What the date arguments accept: one (start, end) pair, a sequence of
#: pairs, or the starts and ends in one flat sequence.
Dates = DatePair | Sequence[DatePair] | Sequence[Sequence[datetime]] | Sequence[datetime]
MIN_RESERVATION_LENGTH = timedelta(minutes=MIN_RASTER)
MAX_DATA_BYTES = 1024 * 1024


class MasterView(NamedTuple):
    """A master allocation with what the booking checks need of it."""

    allocation: Allocation
    in_group: bool
    taken: set[datetime]  # starts of the master's own slots (not its mirrors')


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@lru_cache(maxsize=64)
def _masters_statement(
    pairs: int, next_reservation_id: bool = False, several_resources: bool = True
) -> Select[Any]:
    """Masters of the given resources overlapping ``pairs`` date ranges, with
    their group size and the starts of their own slots; optionally also the
    next reservation id, so a new reservation needs no round trip of its own.

    Built once per shape: composing the expression costs more than running it.
    One resource is compared as a plain parameter: a list is expanded into
    the statement on every run.
    """
    member = aliased(Allocation)
    # The resource filters the aggregate: only the group index can serve the lookup.
    group_size = select(func.count().filter(member.resource == Allocation.resource)).where(
        member.group == Allocation.group
    ).scalar_subquery()
    taken = select(func.array_agg(ReservedSlot.start)).where(
        ReservedSlot.allocation_id == Allocation.id
    ).scalar_subquery()
    ranges = []
    for index in range(pairs):
        start = bindparam(f'start_{index}', type_=UTCDateTime())
        end = bindparam(f'end_{index}', type_=UTCDateTime())
        ranges.append(and_(overlap_hint(start, end), overlaps(start, end)))
    resources: Any = bindparam('resources', expanding=True)
    resource: Any = bindparam('resource', type_=Allocation.resource.type)
    columns: list[Any] = [Allocation, group_size, taken]
    if next_reservation_id:
        # Uncorrelated: evaluated once per statement, not once per row.
        columns.append(
            select(func.nextval(func.pg_get_serial_sequence('reservations', 'id'))).scalar_subquery()
        )
    return (
        select(*columns)
        .where(
            Allocation.mirror_of.in_(resources) if several_resources else Allocation.mirror_of == resource,
            # Implied for masters; lets the GiST index of (resource, span) serve.
            Allocation.resource.in_(resources) if several_resources else Allocation.resource == resource,
            Allocation.resource == Allocation.mirror_of,
            or_(*ranges),
        )
        .options(lazyload(Allocation.reserved_slots))
        .order_by(Allocation._start)
    )


class SpotUsage(NamedTuple):
    free: int
    resource: uuid.UUID | None  # the first free spot
    row_id: int | None  # its allocation row, if written


# Spot usages read, by (master id, first slot start, last slot start).
SpotUsages = dict[tuple[int, datetime, datetime], SpotUsage]


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


@lru_cache(maxsize=256)
def _spot_resources(master: uuid.UUID, quota: int) -> tuple[uuid.UUID, ...]:
    return (master, *generate_uuids(master, quota))


# Per spot, in order: taken if any of its slots starts in [first, last].
_SPOT_USAGE = text("""
SELECT count(*) FILTER (WHERE NOT spot.taken),
       (array_agg(spot.resource ORDER BY spot.n) FILTER (WHERE NOT spot.taken))[1],
       (array_agg(spot.id ORDER BY spot.n) FILTER (WHERE NOT spot.taken))[1]
FROM (
    SELECT candidate.resource, candidate.n, a.id, EXISTS (
        SELECT 1 FROM reserved_slots r
        WHERE r.resource = candidate.resource AND r.start BETWEEN :first AND :last
    ) AS taken
    FROM unnest(CAST(:spots AS uuid[])) WITH ORDINALITY AS candidate(resource, n)
    LEFT JOIN allocations a ON a.resource = candidate.resource AND a._start = :start
) AS spot
""").columns(
    column('free', Integer), column('resource', UUIDType()), column('row_id', Integer)
)


class SchedulerBase(ContextServicesMixin):
    """What every part of the scheduler builds on: who it is and what it owns."""

    def __init__(
        self,
        context: Context,
        name: str | uuid.UUID,
        timezone: str,
        blocking_names: Iterable[str] = (),
        allocation_cls: type[Allocation] = Allocation,
        reservation_cls: type[Reservation] = Reservation,
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
            allocation_cls, blocking_names = blocking_names, ()
        validation.check_names(blocking_names, 'blocking_names')
        self.context = context
        self.queries = Queries(context)
        self.name = name
        self.timezone = timezone
        self.blocking_names = tuple(blocking_names)
        self.allocation_cls = allocation_cls
        self.reservation_cls = reservation_cls

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

    def setup_database(self) -> None:
        """Create the newest schema and record its revision.

        A database made by an older libres (1.4.0 included) is migrated instead;
        one at the newest revision is left alone. Runs in a transaction of its
        own on the session's engine (committed there, not in the session), under
        an advisory lock so two processes do not migrate at once.
        """
        from libres.db import migrate

        migrate.ensure_schema(self.session.get_bind().engine)

    def _loading_many(self) -> AbstractContextManager[None]:
        """Around loads of many objects: the collector paused only if the
        context's ``pause_gc_during_loads`` setting asks for it."""
        return collector_paused(self.context.get_setting('pause_gc_during_loads') is True)

    # --- dates ----------------------------------------------------------------

    def _prepare_date(self, value: datetime) -> datetime:
        """Naive values are in the scheduler's zone; the result is aware UTC."""
        if not isinstance(value, datetime):
            raise errors.InvalidArgumentType(f'expected a datetime, got {value!r}')
        return standardize_date(value, self.timezone)

    def _prepare_range(self, start: datetime, end: datetime) -> DatePair:
        """A start and an end as aware UTC (libres 1.4.0's name)."""
        return self._prepare_date(start), self._prepare_date(end)

    def _prepare_dates(self, dates: Any) -> list[DatePair]:
        if isinstance(dates, (str, bytes, datetime)):
            raise errors.InvalidArgumentType(f'dates must be (start, end) pairs, got {dates!r}')
        try:
            values = list(flatten(dates))
        except TypeError as error:
            raise errors.InvalidArgumentType(f'dates must be (start, end) pairs, got {dates!r}') from error
        if len(values) % 2:
            raise errors.InvalidArgument(f'dates must come in (start, end) pairs, got {len(values)} values')
        return [(self._prepare_date(start), self._prepare_date(end)) for start, end in pairs(values)]

    def _booking_dates(
        self, dates: Dates | None, group: uuid.UUID | None, refuse_empty_group: bool = False
    ) -> list[DatePair]:
        """The dates a reservation or blocker asks for, aware UTC: the given
        ones (naive ones that do not exist, or are ambiguous where it
        matters, refused) or the group's."""
        validation.check_optional_uuid(group, 'group')
        if group:
            group_dates = self.allocation_dates_by_group(group)
            if not group_dates and refuse_empty_group:
                raise errors.InvalidReservationError(f'the group {group} has no allocations')
            return self._prepare_dates(group_dates)
        values = validation.date_values(dates)
        refuse_unclear_local_times(self, values)
        return self._prepare_dates(values)

    def _checked_data(self, data: Any) -> Any:
        """Refuse data that is not a dict or too big to store sensibly."""
        if data is None:
            return data
        validation.check_data(data)
        # default=str: a custom JSON serializer may handle more types.
        size = len(json.dumps(data, default=str))
        if size > MAX_DATA_BYTES:
            raise errors.InvalidData(f'data is {size} bytes of JSON, at most {MAX_DATA_BYTES} are stored')
        return data

    # --- record sets ----------------------------------------------------------

    def _visible_resources(self) -> list[uuid.UUID]:
        return [self.resource, *self.blocking_resources]

    def managed_allocations(self) -> Query[Allocation]:
        """Every allocation this scheduler owns: masters and the mirrors written so far.

        :returns: a `Query` of `Allocation` (`mirror_of` is this scheduler's
            resource), not yet run and unordered.
        """
        return self.session.query(Allocation).filter(Allocation.mirror_of == self.resource)

    def blocking_allocations(self) -> Query[Allocation]:
        """The allocations of the blocking resources (`blocking_names`), masters and mirrors.

        :returns: a `Query` of `Allocation`, not yet run; it matches nothing
            when the scheduler has no blocking names.
        """
        return self.session.query(Allocation).filter(
            Allocation.mirror_of.in_(list(self.blocking_resources))
        )

    def visible_allocations(self) -> Query[Allocation]:
        """The allocations this scheduler owns plus those of its blocking resources.

        :returns: a `Query` of `Allocation` (masters and mirrors), not yet run.
        """
        return self.session.query(Allocation).filter(
            Allocation.mirror_of.in_(self._visible_resources())
        )

    def _managed_allocation_resources(self) -> Any:
        return select(Allocation.resource).where(Allocation.mirror_of == self.resource)

    def managed_reserved_slots(self) -> Query[ReservedSlot]:
        """The reserved slots (of reservations and blockers) on this scheduler's allocations.

        :returns: a `Query` of `ReservedSlot`, not yet run.
        """
        return self.session.query(ReservedSlot).filter(
            ReservedSlot.resource.in_(self._managed_allocation_resources())
        )

    def managed_reservations(self) -> Query[Reservation]:
        """The reservations of this scheduler's resource, pending and approved.

        :returns: a `Query` of `Reservation`, not yet run.
        """
        return self.session.query(Reservation).filter(Reservation.resource == self.resource)

    def visible_reservations(self) -> Query[Reservation]:
        """The reservations of this scheduler's resource and of its blocking resources.

        :returns: a `Query` of `Reservation`, not yet run.
        """
        return self.session.query(Reservation).filter(
            Reservation.resource.in_(self._visible_resources())
        )

    def managed_blockers(self) -> Query[ReservationBlocker]:
        """The blockers of this scheduler's resource.

        :returns: a `Query` of `ReservationBlocker`, not yet run.
        """
        return self.session.query(ReservationBlocker).filter(
            ReservationBlocker.resource == self.resource
        )

    def visible_blockers(self) -> Query[ReservationBlocker]:
        """The blockers of this scheduler's resource and of its blocking resources.

        :returns: a `Query` of `ReservationBlocker`, not yet run.
        """
        return self.session.query(ReservationBlocker).filter(
            ReservationBlocker.resource.in_(self._visible_resources())
        )

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

    def _delete_each(self, query: Query[Any]) -> None:
        """Delete the rows one by one through the unit of work (no bulk
        statement), slots before their owners."""
        for row in query:
            self.session.delete(row)
        self.session.flush()

    def _take_slots(
        self, spot: Allocation, start: datetime, end: datetime,
        token: uuid.UUID, source_type: SourceType, source_id: int,
    ) -> list[ReservedSlot]:
        """Write the slots of [start, end] on one spot (master or mirror); an
        imaginary mirror becomes a real row."""
        if spot.is_transient:
            self.session.add(spot)
        slots = []
        for slot_start, slot_end in spot.all_slots(start, end):
            slot = ReservedSlot(
                start=slot_start, end=slot_end, resource=spot.resource,
                reservation_token=token, source_type=source_type, source_id=source_id,
            )
            if 'reserved_slots' in spot.__dict__:
                # In the loaded collection, so later checks of the same call see it.
                spot.reserved_slots.append(slot)
            elif spot.id is not None:
                # By id: the allocation stays untouched and its unloaded
                # collection unloaded (it reads the slot when next loaded).
                slot.allocation_id = spot.id
                self.session.add(slot)
            else:
                # Queued on the unloaded collection without loading it.
                slot.allocation = spot
                self.session.add(slot)
            slots.append(slot)
        return slots

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
        if not token:
            raise errors.LibresAssertionError('a token is required')
        validation.check_uuid(token, 'token')
        validation.check_optional_text(type, 'type')
        query = self.managed_reserved_slots().filter(ReservedSlot.reservation_token == token)
        if type is not None:
            query = query.filter(ReservedSlot.source_type == type)
        return query

    def reserved_slots_by_reservation(self, token: uuid.UUID, id: int | None = None) -> Query[ReservedSlot]:
        """The reserved slots of a token's reservations, or of one of them.

        :param token: the reservation token, a UUID or a string holding one.
        :param id: the id (an `int`) of one reservation of the token, or `None` for all.
        :returns: a `Query` of `ReservedSlot`, not yet run (pending reservations have none).
        :raises LibresAssertionError: the token is empty.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        validation.check_optional_id(id)
        query = self.reserved_slots_by_type(token, 'reservation')
        if id is not None:
            query = query.filter(ReservedSlot.source_id == id)
        return query

    def reserved_slots_by_blocker(self, token: uuid.UUID, id: int | None = None) -> Query[ReservedSlot]:
        """The reserved slots of a token's blockers, or of one of them.

        :param token: the blocker token, a UUID or a string holding one.
        :param id: the id (an `int`) of one blocker of the token, or `None` for all.
        :returns: a `Query` of `ReservedSlot`, not yet run.
        :raises LibresAssertionError: the token is empty.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        validation.check_optional_id(id)
        query = self.reserved_slots_by_type(token, 'blocker')
        if id is not None:
            query = query.filter(ReservedSlot.source_id == id)
        return query

    def reservations_by_token(self, token: uuid.UUID | str, id: int | None = None) -> Query[Reservation]:
        """This scheduler's reservations (pending and approved) of a token.

        :param token: a UUID or a string holding one.
        :param id: the id (an `int`) of one reservation of the token; `None` (or 0) for all.
        :returns: a `Query` of `Reservation`, not yet run; empty for an unknown token.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        validation.check_uuid(token, 'token')
        validation.check_optional_id(id)
        query = self.managed_reservations().filter(Reservation.token == token)
        if id:
            query = query.filter(Reservation.id == id)
        return query

    def blockers_by_token(self, token: uuid.UUID | str, id: int | None = None) -> Query[ReservationBlocker]:
        """This scheduler's blockers of a token.

        :param token: a UUID or a string holding one.
        :param id: the id (an `int`) of one blocker of the token; `None` (or 0) for all.
        :returns: a `Query` of `ReservationBlocker`, not yet run; empty for an unknown token.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        validation.check_uuid(token, 'token')
        validation.check_optional_id(id)
        query = self.managed_blockers().filter(ReservationBlocker.token == token)
        if id:
            query = query.filter(ReservationBlocker.id == id)
        return query

    def reservations_by_group(self, group: uuid.UUID) -> Query[Reservation]:
        """This scheduler's reservations of every token that reserved the group.

        All rows of such a token are included, also those targeting other groups
        or single allocations.

        :param group: the allocation group, a UUID or a string holding one.
        :returns: a `Query` of `Reservation`, not yet run.
        :raises InvalidUUID: the group is not a UUID.
        """
        validation.check_uuid(group, 'group')
        tokens = select(Reservation.token).where(
            Reservation.resource == self.resource, Reservation.target == group
        )
        return self.managed_reservations().filter(Reservation.token.in_(tokens))

    def reservations_by_allocation(self, allocation_id: int) -> Query[Reservation]:
        """The reservations of the allocation's group (see `reservations_by_group`).

        :param allocation_id: the id (an `int`) of an allocation of this scheduler.
        :returns: a `Query` of `Reservation`, not yet run.
        :raises RecordNotFound: this scheduler has no allocation with this id.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        master = self.allocation_by_id(allocation_id)
        return self.reservations_by_group(master.group)

    # --- allocation look-ups --------------------------------------------------

    def allocation_by_id(self, id: int) -> Allocation:
        """The allocation of this scheduler with this id (a master or a written mirror).

        :param id: the allocation id, an `int`.
        :returns: the `Allocation`; the query runs at once.
        :raises RecordNotFound: this scheduler has no such allocation (also a
            SQLAlchemy `NoResultFound`, as in 1.4.0).
        :raises InvalidArgumentType: the id is not a whole number.
        """
        validation.check_id(id)
        return the_one(self.managed_allocations().filter(Allocation.id == id), f'allocation {id}')  # type: ignore[no-any-return]

    def allocations_by_ids(self, ids: Iterable[int]) -> Query[Allocation]:
        """This scheduler's allocations with the given ids, in start order.

        :param ids: an iterable of `int` ids (not a string); unknown ids are skipped.
        :returns: a `Query` of `Allocation`, not yet run.
        :raises InvalidArgumentType: `ids` is not an iterable of whole numbers.
        """
        ids = list(ids) if not isinstance(ids, (str, bytes)) and isinstance(ids, Iterable) else ids
        validation.check_ids(ids)
        return (
            self.managed_allocations()
            .filter(Allocation.id.in_(list(ids)))
            .order_by(Allocation._start)
        )

    def allocations_by_group(self, group: uuid.UUID, masters_only: bool = True) -> Query[Allocation]:
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
    ) -> Query[Allocation]:
        """This scheduler's allocations of any of the groups.

        :param groups: an iterable (not a string) of group UUIDs or strings holding them.
        :param masters_only: `True` (default) for the masters only, `False` to
            include the written mirrors.
        :returns: a `Query` of `Allocation`, not yet run and unordered.
        :raises InvalidArgumentType: `groups` is not an iterable.
        :raises InvalidUUID: a group is not a UUID.
        """
        if not isinstance(groups, (str, bytes)) and isinstance(groups, Iterable):
            groups = list(groups)
        validation.check_uuids(groups, 'groups')
        query = self.managed_allocations().filter(Allocation.group.in_(list(groups)))
        if masters_only:
            query = query.filter(Allocation.resource == self.resource)
        return query

    def _allocations_by_source(
        self, source: type[Reservation] | type[ReservationBlocker], source_type: str,
        token: uuid.UUID, id: int | None,
    ) -> Query[Allocation]:
        validation.check_uuid(token, 'token')
        validation.check_optional_id(id)
        # EXISTS instead of a join: every allocation once, also in count().
        holds_slot = exists().where(
            ReservedSlot.allocation_id == Allocation.id,
            ReservedSlot.reservation_token == token,
            ReservedSlot.source_type == source_type,
        )
        targets = select(source.target).where(
            source.resource == self.resource, source.token == token
        )
        if id is not None:
            targets = targets.where(source.id == id)
        return self.managed_allocations().filter(holds_slot, Allocation.group.in_(targets))

    def allocations_by_reservation(self, token: uuid.UUID, id: int | None = None) -> Query[Allocation]:
        """The allocations (masters or mirrors) holding the slots of a token's reservations.

        Pending reservations have no slots, so they give nothing; each
        allocation appears once, also in `count()`.

        :param token: the reservation token, a UUID or a string holding one.
        :param id: the id (an `int`) of one reservation of the token, or `None` for all.
        :returns: a `Query` of `Allocation`, not yet run.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._allocations_by_source(Reservation, 'reservation', token, id)

    def allocations_by_blocker(self, token: uuid.UUID, id: int | None = None) -> Query[Allocation]:
        """The allocations (masters or mirrors) holding the slots of a token's blockers.

        Each allocation appears once, also in `count()`.

        :param token: the blocker token, a UUID or a string holding one.
        :param id: the id (an `int`) of one blocker of the token, or `None` for all.
        :returns: a `Query` of `Allocation`, not yet run.
        :raises InvalidUUID: the token is not a UUID.
        :raises InvalidArgumentType: the id is not a whole number.
        """
        return self._allocations_by_source(ReservationBlocker, 'blocker', token, id)

    def allocations_in_range(
        self, start: datetime, end: datetime, masters_only: bool = True, managed_only: bool = True
    ) -> Query[Allocation]:
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
        base = self.managed_allocations() if managed_only else self.visible_allocations()
        query = self.queries.allocations_in_range(base, start, end)
        if masters_only:
            query = query.filter(Allocation.resource == Allocation.mirror_of)
        return query

    def _masters_query(self, dates: list[DatePair], visible: bool) -> Query[Allocation]:
        base = self.visible_allocations() if visible else self.managed_allocations()
        resources = self._visible_resources() if visible else [self.resource]
        # The slots come in the same statement: every caller checks them.
        return self.queries.overlapping_allocations(base, dates).filter(
            Allocation.resource == Allocation.mirror_of,
            Allocation.resource.in_(resources),
            or_(*[overlap_hint(start, end) for start, end in dates]),
        ).options(joinedload(Allocation.reserved_slots)).order_by(Allocation._start)

    def _masters_overlapping(
        self, dates: list[DatePair], visible: bool = False
    ) -> list[Allocation]:
        """Master allocations overlapping any of the ranges, with their slots,
        in one query."""
        if not dates:
            return []
        return self._masters_query(dates, visible).all()

    def _masters_with_taken_and_id(
        self, dates: list[DatePair], visible: bool = False, next_reservation_id: bool = False
    ) -> tuple[list[MasterView], int | None]:
        """The overlapping masters, each with ``in_group`` and the starts of its
        own slots, in one query and without loading slot objects; and a fresh
        reservation id if asked for."""
        if not dates:
            return [], None
        resources = self._visible_resources() if visible else [self.resource]
        several = len(resources) > 1
        params: dict[str, Any] = {'resources': resources} if several else {'resource': resources[0]}
        for index, (start, end) in enumerate(dates):
            params[f'start_{index}'] = start
            params[f'end_{index}'] = end
        statement = _masters_statement(len(dates), next_reservation_id, several)
        rows: Any = self.session.execute(statement, params)
        views = []
        next_id = None
        for allocation, size, starts, *extra in rows:
            views.append(MasterView(allocation, size > 1, {as_utc(start) for start in starts or ()}))
            next_id = extra[0] if extra else None
        return views, next_id

    def _master_spot(
        self, view: MasterView, start: datetime, end: datetime, known: SpotUsages | None = None
    ) -> Allocation | None:
        """``Allocation.find_spot`` of a master, its own slots read from the view."""
        master = view.allocation
        if not any(slot_start in view.taken for slot_start, _ in master.all_slots(start, end)):
            return master
        if master.quota == 1:
            return None
        return self._first_free_spot(master, start, end, known)

    def _spot_usage(
        self, master: Allocation, start: datetime, end: datetime, known: SpotUsages | None = None
    ) -> SpotUsage:
        """How many spots of a master (itself and its mirrors) are free in the
        range, and which is the first, in one query: the cost stays the same
        whether one mirror is written or two hundred.

        ``known`` holds usages read before, by master and slot range: one
        found there is not read again, one read is added.
        """
        slot_starts = [slot_start for slot_start, _ in master.all_slots(start, end)]
        key = (master.id, min(slot_starts), max(slot_starts))
        if known is not None and key in known:
            return known[key]
        free, resource, row_id = self.session.execute(_SPOT_USAGE, {
            'spots': [str(spot) for spot in _spot_resources(master.resource, master.quota)],
            'first': naive_utc(key[1]),
            'last': naive_utc(key[2]),
            'start': naive_utc(master._start),
        }).one()
        usage = SpotUsage(free, resource, row_id)
        if known is not None:
            known[key] = usage
        return usage

    def _first_free_spot(
        self, master: Allocation, start: datetime, end: datetime, known: SpotUsages | None = None
    ) -> Allocation | None:
        """The first free spot of a master (an unwritten mirror as a new row,
        not yet added), or None."""
        usage = self._spot_usage(master, start, end, known)
        if usage.resource is None:
            return None
        if usage.resource == master.resource:
            return master
        if usage.row_id is not None:
            return self.session.get(Allocation, usage.row_id)
        mirror = master.copy()
        mirror.resource = usage.resource
        return mirror

    def allocation_by_date(self, start: datetime, end: datetime) -> Allocation:
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
        validation.check_uuid(group, 'group')
        query = self.allocations_by_group(group).with_entities(Allocation._start, Allocation._end)
        return query.all()

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
        free = 1 if master_allocation.is_available(start, end) else 0
        if master_allocation.quota == 1:
            return free
        for mirror in self.allocation_mirrors_by_master(master_allocation):
            if mirror.is_available(start, end):
                free += 1
        return free

    # --- checks shared by reservations and blockers -----------------------------

    def _validate_length(self, start: datetime, end: datetime) -> None:
        if not is_valid_reservation_length(start, end, self.timezone):
            raise errors.ReservationTooLong(
                f'{errors.describe_span(start, end, self.timezone)} is longer than a day: '
                f'a reservation lasts at most a day (a whole local day on DST days)'
            )
        # The whole duration, not only its seconds-within-a-day part: an exact
        # midnight-to-midnight day is long enough.
        if start > end or end - start < MIN_RESERVATION_LENGTH:
            raise errors.ReservationTooShort(
                f'{errors.describe_span(start, end, self.timezone)}: a reservation must end after it '
                f'starts and last at least {MIN_RASTER} minutes'
            )

    def _each_overlap(
        self, dates: list[DatePair], masters: list[Allocation]
    ) -> Iterator[tuple[datetime, datetime, Allocation]]:
        """Every (start, end, master) that overlaps, after checking each length."""
        for start, end in dates:
            self._validate_length(start, end)
            for allocation in masters:
                if allocation.overlaps(start, end):
                    yield start, end, allocation

    def _require_free_spots(
        self, allocation: Allocation, start: datetime, end: datetime, spots: int,
        view: MasterView | None = None, usages: SpotUsages | None = None,
    ) -> None:
        """A free spot, and ``spots`` free in all (``find_spot`` and
        ``free_allocations_count`` of a master), without reading mirror by
        mirror: one spot is checked on the master (its ``view`` if given),
        several by one query (kept in ``usages`` if given)."""
        if allocation.quota == 1:
            master_free = (
                self._master_spot(view, start, end) if view is not None else allocation.find_spot(start, end)
            ) is not None
            if not master_free or spots > 1:
                raise errors.AlreadyReservedError(
                    self._not_free(allocation, start, end, spots, int(master_free))
                )
        elif (free := self._spot_usage(allocation, start, end, usages).free) < max(spots, 1):
            raise errors.AlreadyReservedError(self._not_free(allocation, start, end, spots, free))

    def _not_free(self, allocation: Allocation, start: datetime, end: datetime, spots: int, free: int) -> str:
        return (
            f'allocation {allocation.id} has {free} of {allocation.quota} spots free for '
            f'{errors.describe_span(start, end, self.timezone)}, {max(spots, 1)} requested: '
            f'choose another time or fewer spots'
        )

    def _require_contained(self, allocation: Allocation, start: datetime, end: datetime) -> None:
        # Blocking resources only need to be free; own allocations must hold the range.
        if allocation.resource == self.resource and not allocation.contains(start, end):
            raise errors.TimerangeTooLong(
                f'{errors.describe_span(start, end, self.timezone)} is not inside allocation '
                f'{allocation.id} ({errors.describe_span(allocation.start, allocation.end, self.timezone)})'
            )

    def allocation_mirrors_by_master(self, master: Allocation) -> list[Allocation]:
        """The mirrors of a master: always `quota - 1` of them.

        Mirrors not written yet are included as transient (imaginary) objects,
        not added to the session.

        :param master: a master `Allocation`.
        :returns: a list of `Allocation`.
        :raises InvalidArgumentType: the master is not an `Allocation`.
        """
        _check_allocation(master, 'master')
        return [a for a in master.siblings() if not a.is_master]

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
