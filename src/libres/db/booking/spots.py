"""THE definition of a free spot, and of the masters a booking meets.

A *spot* is one of the ``quota`` places of a master allocation: the master
itself or one of its mirrors (written as a row, or still imaginary). A spot
is **free** for ``[start, end]`` when none of its raster slots in that range
(``Allocation.all_slots``) is a reserved slot that blocks
(``ReservedSlot.blocks``: every slot but an expired hold). A booking asks
for the range it *occupies*: its own and its buffers
(``libres.db.booking.policies.occupied``). That rule has two forms:

* in Python, over slots loaded in the session: :func:`is_free`, behind
  ``Allocation.is_available``, ``find_spot``, ``quota_left`` and
  ``free_allocations_count``;
* in SQL, one query for all spots of a master however many mirrors are
  written (``libres.db.sql.spots.SPOT_USAGE``): :meth:`Spots.usage`.

A slot of a spot lies inside its allocation and on its raster (database
constraints), so "a slot starting in [first slot start, last slot start]"
is the same set as "one of the range's slots": the two forms agree, and
``tests/integration/test_free_spot_rule.py`` proves it on random states.

The masters a booking meets are read with their group sizes and the starts
of their own slots in one prebuilt statement (:meth:`Spots.masters_with_taken`),
or as ORM objects with their slots joined (:meth:`Spots.masters_overlapping`)
where the slots are written to next.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Query, aliased, joinedload, lazyload

from libres.db.booking.dates import BookingDates, DatePair
from libres.db.booking.policies import has_buffers, occupied
from libres.db.booking.scope import BookingScope, visible_resources
from libres.db.models import Allocation, ReservedSlot
from libres.db.models.types.utcdatetime import UTCDateTime
from libres.db.overlap import overlap_hint, overlaps
from libres.db.records import Records
from libres.db.sql.spots import SPOT_USAGE
from libres.modules import clock, errors
from libres.modules.utils import generate_uuids


class MasterView(NamedTuple):
    """A master allocation with what the booking checks need of it."""

    allocation: Allocation
    in_group: bool
    taken: set[datetime]  # starts of the master's own blocking slots (not its mirrors')
    expired: set[datetime]  # starts of its slots of expired holds (in the way of a booking)


class SpotUsage(NamedTuple):
    free: int
    resource: uuid.UUID | None  # the first free spot
    row_id: int | None  # its allocation row, if written
    expired: bool = False  # whether expired holds lie in the way on that spot


# Spot usages read, by (master id, first slot start, last slot start).
SpotUsages = dict[tuple[int, datetime, datetime], SpotUsage]


# --- the rule, in Python ----------------------------------------------------------

def is_free(spot: Allocation, start: datetime, end: datetime, taken: set[datetime]) -> bool:
    """Whether none of the spot's slots of ``[start, end]`` starts at one of ``taken``."""
    if not taken:
        return True
    return not any(slot_start in taken for slot_start, _ in spot.all_slots(start, end))


def first_free_sibling(master: Allocation, start: datetime, end: datetime) -> Allocation | None:
    """The master if free in the range, else the first free mirror (loaded
    objects; an imaginary mirror is returned transient)."""
    if master.is_available(start, end):
        return master
    if master.quota == 1:
        return None
    for mirror in master.siblings()[1:]:
        if mirror.is_available(start, end):
            return mirror
    return None


def free_siblings(master: Allocation, start: datetime | None = None, end: datetime | None = None) -> int:
    """How many spots of the master are free in the range (its whole span if
    none is given), imaginary mirrors counting as free."""
    if master.quota == 1:
        return 1 if master.is_available(start, end) else 0
    return sum(1 for sibling in master.siblings() if sibling.is_available(start, end))


# --- the masters a booking meets --------------------------------------------------

def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


@lru_cache(maxsize=1)
def group_size() -> Any:
    """How many allocations of an allocation's resource share its group (more
    than one: ``Allocation.in_group``), as a column correlated to the
    enclosing query's ``allocations``. The group index finds the members; the
    resource filters the count, so the planner cannot pair the lookup with a
    scan of the resource's whole GiST index (as it did, without statistics,
    for a resource condition), once per allocation. Built once: an
    expression is immutable, and composing it costs more than reusing it."""
    member = aliased(Allocation)
    return select(func.count().filter(member.resource == Allocation.resource)).where(
        member.group == Allocation.group
    ).scalar_subquery()


@lru_cache(maxsize=2)
def own_slot_starts(blocking: bool = True) -> Any:
    """The starts of an allocation's own slots that block at the bind
    parameter ``now`` (or, with ``blocking=False``, of those that do not:
    expired holds), as an array column (NULL for none) correlated to the
    enclosing query's ``allocations``: ``is_free`` reads them without slot
    objects. Read by the slots' allocation index, once per allocation."""
    rule = ReservedSlot.blocking_at(bindparam('now', type_=UTCDateTime()))
    return select(func.array_agg(ReservedSlot.start).filter(rule if blocking else ~rule)).where(
        ReservedSlot.allocation_id == Allocation.id
    ).scalar_subquery()


@lru_cache(maxsize=64)
def masters_statement(
    pairs: int, next_reservation_id: bool = False, several_resources: bool = True
) -> Select[Any]:
    """Masters of the given resources overlapping ``pairs`` date ranges, with
    their group size and the starts of their own slots; optionally also the
    next reservation id, so a new reservation needs no round trip of its own.

    Built once per shape: composing the expression costs more than running it.
    One resource is compared as a plain parameter: a list is expanded into
    the statement on every run.
    """
    ranges = []
    for index in range(pairs):
        start = bindparam(f'start_{index}', type_=UTCDateTime())
        end = bindparam(f'end_{index}', type_=UTCDateTime())
        ranges.append(and_(overlap_hint(start, end), overlaps(start, end)))
    resources: Any = bindparam('resources', expanding=True)
    resource: Any = bindparam('resource', type_=Allocation.resource.type)
    columns: list[Any] = [Allocation, group_size(), own_slot_starts(), own_slot_starts(blocking=False)]
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


@lru_cache(maxsize=256)
def _spot_resources(master: uuid.UUID, quota: int) -> tuple[uuid.UUID, ...]:
    return (master, *generate_uuids(master, quota))


class Spots:
    """The free-spot rule and the overlapping masters, for one scope."""

    def __init__(self, scope: BookingScope, records: Records, dates: BookingDates) -> None:
        self.scope = scope
        self.records = records
        self.dates = dates

    # --- masters --------------------------------------------------------------

    def _masters_query(self, dates: list[DatePair], visible: bool) -> Query[Allocation]:
        base = self.records.visible_allocations() if visible else self.records.managed_allocations()
        resources = visible_resources(self.scope) if visible else [self.scope.resource]
        # The slots come in the same statement: every caller checks them.
        return self.scope.queries.overlapping_allocations(base, dates).filter(
            Allocation.resource == Allocation.mirror_of,
            Allocation.resource.in_(resources),
            or_(*[overlap_hint(start, end) for start, end in dates]),
        ).options(joinedload(Allocation.reserved_slots)).order_by(Allocation._start)

    def masters_overlapping(self, dates: list[DatePair], visible: bool = False) -> list[Allocation]:
        """Master allocations overlapping any of the ranges, with their slots,
        in one query."""
        if not dates:
            return []
        return self._masters_query(dates, visible).all()

    def masters_with_taken(
        self, dates: list[DatePair], visible: bool = False, next_reservation_id: bool = False
    ) -> tuple[list[MasterView], int | None]:
        """The overlapping masters, each with ``in_group`` and the starts of its
        own slots, in one query and without loading slot objects; and a fresh
        reservation id if asked for."""
        if not dates:
            return [], None
        resources = visible_resources(self.scope) if visible else [self.scope.resource]
        several = len(resources) > 1
        params: dict[str, Any] = {'resources': resources} if several else {'resource': resources[0]}
        params['now'] = clock.now()
        for index, (start, end) in enumerate(dates):
            params[f'start_{index}'] = start
            params[f'end_{index}'] = end
        statement = masters_statement(len(dates), next_reservation_id, several)
        rows: Any = self.scope.session.execute(statement, params)
        views = []
        next_id = None
        for allocation, size, starts, expired, *extra in rows:
            views.append(MasterView(
                allocation, size > 1, {as_utc(start) for start in starts or ()},
                {as_utc(start) for start in expired or ()},
            ))
            next_id = extra[0] if extra else None
        return views, next_id

    def each_overlap(
        self, dates: list[DatePair], masters: Iterable[Allocation]
    ) -> Iterator[tuple[datetime, datetime, Allocation]]:
        """Every (start, end, master) that overlaps, after checking each length."""
        masters = list(masters)
        for start, end in dates:
            self.dates.check_length(start, end)
            for allocation in masters:
                if allocation.overlaps(start, end):
                    yield start, end, allocation

    # --- free spots -----------------------------------------------------------

    def master_spot(
        self, view: MasterView, start: datetime, end: datetime, known: SpotUsages | None = None
    ) -> Allocation | None:
        """``first_free_sibling`` of a master for a booking of ``[start, end]``
        (and its buffers), its own slots read from the view."""
        master = view.allocation
        start, end = occupied(master, start, end)
        if is_free(master, start, end, view.taken):
            return master
        if master.quota == 1:
            return None
        return self.first_free(master, start, end, known)

    def usage(
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
        free, resource, row_id, expired = self.scope.session.execute(SPOT_USAGE, {
            'spots': [str(spot) for spot in _spot_resources(master.resource, master.quota)],
            'first': naive_utc(key[1]),
            'last': naive_utc(key[2]),
            'start': naive_utc(master._start),
            'now': naive_utc(clock.now()),
        }).one()
        usage = SpotUsage(free, resource, row_id, bool(expired))
        if known is not None:
            known[key] = usage
        return usage

    def first_free(
        self, master: Allocation, start: datetime, end: datetime, known: SpotUsages | None = None
    ) -> Allocation | None:
        """The first free spot of a master (an unwritten mirror as a new row,
        not yet added), or None."""
        usage = self.usage(master, start, end, known)
        if usage.resource is None:
            return None
        if usage.resource == master.resource:
            return master
        if usage.row_id is not None:
            return self.scope.session.get(Allocation, usage.row_id)
        mirror = master.copy()
        mirror.resource = usage.resource
        return mirror

    def spots_among(self, masters: Iterable[Allocation], start: datetime, end: datetime) -> list[Allocation]:
        """The free spot of every master overlapping the range (loaded objects)."""
        targets = []
        for allocation in masters:
            if not allocation.overlaps(start, end):
                continue
            master = allocation.get_master()
            spot = first_free_sibling(master, *occupied(master, start, end))
            if spot is None:
                raise errors.AlreadyReservedError(
                    f'allocation {allocation.id} has no free spot for '
                    f'{errors.describe_span(start, end, allocation.timezone)}'
                )
            targets.append(spot)
        return targets

    # --- the checks of a booking ----------------------------------------------

    def require_free(
        self, allocation: Allocation, start: datetime, end: datetime, spots: int,
        view: MasterView | None = None, usages: SpotUsages | None = None,
        buffered: bool = True,
    ) -> None:
        """A free spot, and ``spots`` free in all, without reading mirror by
        mirror: one spot is checked on the master (its ``view`` if given),
        several by one query (kept in ``usages`` if given). A reservation
        asks for its buffers too; a blocker (``buffered=False``) has none."""
        if not buffered and has_buffers(allocation):
            view = None  # the view answers for the buffered range only
        wanted = occupied(allocation, start, end) if buffered else (start, end)
        if allocation.quota == 1:
            master_free = (
                self.master_spot(view, start, end) if view is not None
                else first_free_sibling(allocation.get_master(), *wanted)
            ) is not None
            if not master_free or spots > 1:
                raise errors.AlreadyReservedError(
                    self.not_free(allocation, start, end, spots, int(master_free))
                )
        elif (free := self.usage(allocation, *wanted, usages).free) < max(spots, 1):
            raise errors.AlreadyReservedError(self.not_free(allocation, start, end, spots, free))

    def not_free(self, allocation: Allocation, start: datetime, end: datetime, spots: int, free: int) -> str:
        """The message of a refused booking: which allocation, when, and how many spots."""
        return (
            f'allocation {allocation.id} has {free} of {allocation.quota} spots free for '
            f'{errors.describe_span(start, end, self.scope.timezone)}, {max(spots, 1)} requested: '
            f'choose another time or fewer spots'
        )

    def require_contained(self, allocation: Allocation, start: datetime, end: datetime) -> None:
        """An own allocation must hold the range; a blocking one need only be free."""
        if allocation.resource == self.scope.resource:
            self.require_inside(allocation, start, end)

    def require_inside(self, allocation: Allocation, start: datetime, end: datetime) -> None:
        """The allocation holds the whole range, else ``TimerangeTooLong``."""
        if not allocation.contains(start, end):
            zone = self.scope.timezone
            raise errors.TimerangeTooLong(
                f'{errors.describe_span(start, end, zone)} is not inside allocation '
                f'{allocation.id} ({errors.describe_span(allocation.start, allocation.end, zone)})'
            )

    def require_free_on_blocking_resources(self, dates: list[DatePair], quota: int) -> None:
        """``quota`` spots free on every overlapping master of the blocking resources."""
        if not self.scope.blocking_resources:
            return
        masters = self.scope.queries.overlapping_allocations(
            self.records.blocking_allocations(), dates
        ).filter(Allocation.resource == Allocation.mirror_of)
        for allocation in masters:
            for start, end in dates:
                if not allocation.overlaps(start, end):
                    continue
                if (free := free_siblings(allocation, *occupied(allocation, start, end))) < quota:
                    raise errors.AlreadyReservedError(self.not_free(allocation, start, end, quota, free))
