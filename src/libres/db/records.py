"""The record queries of one resource: what it manages, what it sees, and
look-ups by token, group, id and source.

One place for each: the public ``Scheduler`` methods of the same names
(``managed_allocations``, ``reservations_by_token``, ...) return these
queries, and the booking engine reads through them as well. Every query is
returned unrun, as libres 1.4.0's were, so callers can refine it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Generic, cast

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Query
from typing_extensions import TypeVar

from libres.db.booking.scope import BookingScope, visible_resources
from libres.db.lookups import the_one
from libres.db.models import Allocation, Reservation, ReservationBlocker, ReservedSlot
from libres.db.overlap import on_resource_overlapping
from libres.modules import errors, validation

#: The allocation and reservation classes of a scheduler (``allocation_cls``,
#: ``reservation_cls``): what its queries give. Rows are read through the
#: base classes, as in libres 1.4.0, so polymorphic subclasses load as such.
AllocationT = TypeVar('AllocationT', bound=Allocation, default=Allocation)
ReservationT = TypeVar('ReservationT', bound=Reservation, default=Reservation)


class Records(Generic[AllocationT, ReservationT]):
    """The queries over one scope's allocations, slots, reservations and blockers."""

    def __init__(self, scope: BookingScope) -> None:
        self.scope = scope

    # --- what the resource manages and sees -----------------------------------

    def managed_allocations(self) -> Query[AllocationT]:
        query = self.scope.session.query(Allocation).filter(Allocation.mirror_of == self.scope.resource)
        return cast('Query[AllocationT]', query)

    def blocking_allocations(self) -> Query[AllocationT]:
        return cast('Query[AllocationT]', self.scope.session.query(Allocation).filter(
            Allocation.mirror_of.in_(list(self.scope.blocking_resources))
        ))

    def visible_allocations(self) -> Query[AllocationT]:
        return cast('Query[AllocationT]', self.scope.session.query(Allocation).filter(
            Allocation.mirror_of.in_(visible_resources(self.scope))
        ))

    def managed_allocation_resources(self) -> Select[Any]:
        """The resources of the managed allocations (masters and mirrors), as a subquery."""
        return select(Allocation.resource).where(Allocation.mirror_of == self.scope.resource)

    def managed_reserved_slots(self) -> Query[ReservedSlot]:
        return self.scope.session.query(ReservedSlot).filter(
            ReservedSlot.resource.in_(self.managed_allocation_resources())
        )

    def managed_reservations(self) -> Query[ReservationT]:
        query = self.scope.session.query(Reservation).filter(Reservation.resource == self.scope.resource)
        return cast('Query[ReservationT]', query)

    def visible_reservations(self) -> Query[ReservationT]:
        return cast('Query[ReservationT]', self.scope.session.query(Reservation).filter(
            Reservation.resource.in_(visible_resources(self.scope))
        ))

    def managed_blockers(self) -> Query[ReservationBlocker]:
        return self.scope.session.query(ReservationBlocker).filter(
            ReservationBlocker.resource == self.scope.resource
        )

    def visible_blockers(self) -> Query[ReservationBlocker]:
        return self.scope.session.query(ReservationBlocker).filter(
            ReservationBlocker.resource.in_(visible_resources(self.scope))
        )

    # --- slots, reservations and blockers of a token ---------------------------

    def reserved_slots_by_type(self, token: uuid.UUID, type: str | None = None) -> Query[ReservedSlot]:
        if not token:
            raise errors.LibresAssertionError('a token is required')
        validation.check_uuid(token, 'token')
        validation.check_optional_text(type, 'type')
        query = self.managed_reserved_slots().filter(ReservedSlot.reservation_token == token)
        if type is not None:
            query = query.filter(ReservedSlot.source_type == type)
        return query

    def reserved_slots_by_source(
        self, source_type: str, token: uuid.UUID, id: int | None
    ) -> Query[ReservedSlot]:
        validation.check_optional_id(id)
        query = self.reserved_slots_by_type(token, source_type)
        if id is not None:
            query = query.filter(ReservedSlot.source_id == id)
        return query

    def reservations_by_token(self, token: uuid.UUID | str, id: int | None = None) -> Query[ReservationT]:
        validation.check_uuid(token, 'token')
        validation.check_optional_id(id)
        query = self.managed_reservations().filter(Reservation.token == token)
        if id:
            query = query.filter(Reservation.id == id)
        return query

    def blockers_by_token(self, token: uuid.UUID | str, id: int | None = None) -> Query[ReservationBlocker]:
        validation.check_uuid(token, 'token')
        validation.check_optional_id(id)
        query = self.managed_blockers().filter(ReservationBlocker.token == token)
        if id:
            query = query.filter(ReservationBlocker.id == id)
        return query

    def reservations_by_group(self, group: uuid.UUID) -> Query[ReservationT]:
        validation.check_uuid(group, 'group')
        tokens = select(Reservation.token).where(
            Reservation.resource == self.scope.resource, Reservation.target == group
        )
        return self.managed_reservations().filter(Reservation.token.in_(tokens))

    # --- allocations -------------------------------------------------------------

    def allocation_by_id(self, id: int) -> AllocationT:
        validation.check_id(id)
        query = self.managed_allocations().filter(Allocation.id == id)
        found: AllocationT = the_one(query, f'allocation {id}')
        return found

    def allocations_by_ids(self, ids: Iterable[int]) -> Query[AllocationT]:
        ids = list(ids) if not isinstance(ids, (str, bytes)) and isinstance(ids, Iterable) else ids
        validation.check_ids(ids)
        return (
            self.managed_allocations()
            .filter(Allocation.id.in_(list(ids)))
            .order_by(Allocation._start)
        )

    def allocations_by_groups(
        self, groups: Iterable[uuid.UUID], masters_only: bool = True
    ) -> Query[AllocationT]:
        if not isinstance(groups, (str, bytes)) and isinstance(groups, Iterable):
            groups = list(groups)
        validation.check_uuids(groups, 'groups')
        query = self.managed_allocations().filter(Allocation.group.in_(list(groups)))
        if masters_only:
            query = query.filter(Allocation.resource == self.scope.resource)
        return query

    def allocation_dates_by_group(self, group: uuid.UUID) -> list[Any]:
        validation.check_uuid(group, 'group')
        query = self.allocations_by_groups([group]).with_entities(Allocation._start, Allocation._end)
        return query.all()

    def allocations_by_source(
        self, source: type[Reservation] | type[ReservationBlocker], source_type: str,
        token: uuid.UUID, id: int | None,
    ) -> Query[AllocationT]:
        """The allocations holding slots of a token's reservations or blockers."""
        validation.check_uuid(token, 'token')
        validation.check_optional_id(id)
        # EXISTS instead of a join: every allocation once, also in count().
        holds_slot = exists().where(
            ReservedSlot.allocation_id == Allocation.id,
            ReservedSlot.reservation_token == token,
            ReservedSlot.source_type == source_type,
        )
        targets = select(source.target).where(
            source.resource == self.scope.resource, source.token == token
        )
        if id is not None:
            targets = targets.where(source.id == id)
        return self.managed_allocations().filter(holds_slot, Allocation.group.in_(targets))

    def allocations_in_range(
        self, start: datetime, end: datetime, masters_only: bool = True, managed_only: bool = True
    ) -> Query[AllocationT]:
        """Allocations overlapping ``[start, end]``, given aware UTC."""
        base = self.managed_allocations() if managed_only else self.visible_allocations()
        query = self.scope.queries.allocations_in_range(base, start, end)
        if masters_only and managed_only:
            # The masters' resource is this one (see ``on_resource_overlapping``).
            query = query.filter(on_resource_overlapping(self.scope.resource, start, end))
        elif masters_only:
            query = query.filter(Allocation.resource == Allocation.mirror_of)
        return query
