"""Writing and removing reserved slots: the rows that make double booking
impossible.

A slot row is keyed by ``(resource, start)``: a spot's raster slot can be
taken once, whatever writes to the table. Slots are written through the
session's unit of work, so a host's transaction manager sees them; the
statement-level triggers (``libres.db.models.invariants``) check at the end
of each statement that every slot lies inside its allocation and has an
owner. The owner is therefore made approved before its first slot is added.

``approve_reservations`` and ``add_blocker`` write slots here, and
``libres check --repair`` recreates missing ones with the same code.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Query
from sqlalchemy.orm.attributes import set_committed_value

from libres.db.booking.dates import DatePair
from libres.db.booking.policies import has_buffers, occupied
from libres.db.booking.scope import BookingScope
from libres.db.booking.spots import Spots
from libres.db.models import Allocation, Reservation, ReservedSlot
from libres.db.models.reserved_slot import SourceType
from libres.db.records import Records
from libres.modules import clock, errors


class Slots:
    """Takes and frees the slots of one scope."""

    def __init__(self, scope: BookingScope, records: Records, spots: Spots) -> None:
        self.scope = scope
        self.records = records
        self.spots = spots

    def take(
        self, spot: Allocation, start: datetime, end: datetime,
        token: uuid.UUID, source_type: SourceType, source_id: int,
        held_until: datetime | None = None, expired_in_way: bool | None = None,
    ) -> list[ReservedSlot]:
        """Write the slots of [start, end] on one spot (master or mirror), and
        of a reservation's buffers around it; an imaginary mirror becomes a
        real row. ``held_until``: the slots of a hold.

        Expired holds in the way are removed first, whole: the loaded slots
        tell whether there are any, else ``expired_in_way`` (what the check
        read), else the removal runs to be sure."""
        session = self.scope.session
        booked = spot.all_slots(start, end)
        if source_type == 'reservation' and has_buffers(spot):
            booked_starts = {slot_start for slot_start, _ in booked}
            wanted = [(s, e, s not in booked_starts) for s, e in spot.all_slots(*occupied(spot, start, end))]
        else:
            wanted = [(s, e, False) for s, e in booked]
        if spot.is_transient:
            session.add(spot)
        elif wanted:
            self._remove_expired_holds(spot, wanted[0][0], wanted[-1][0], expired_in_way)
        slots = []
        for slot_start, slot_end, buffer in wanted:
            slot = ReservedSlot(
                start=slot_start, end=slot_end, resource=spot.resource,
                reservation_token=token, source_type=source_type, source_id=source_id,
                held_until=held_until, buffer=buffer,
            )
            if 'reserved_slots' in spot.__dict__:
                # In the loaded collection, so later checks of the same call see it.
                spot.reserved_slots.append(slot)
            elif spot.id is not None:
                # By id: the allocation stays untouched and its unloaded
                # collection unloaded (it reads the slot when next loaded).
                slot.allocation_id = spot.id
                session.add(slot)
            else:
                # Queued on the unloaded collection without loading it.
                slot.allocation = spot
                session.add(slot)
            slots.append(slot)
        return slots

    def _remove_expired_holds(
        self, spot: Allocation, first: datetime, last: datetime, in_way: bool | None
    ) -> None:
        """Delete every slot of the holds that expired with a slot on the spot
        in [first, last] (an ORM-enabled delete: the session sees it)."""
        now = clock.now()
        loaded = 'reserved_slots' in spot.__dict__
        if loaded:
            stale = {
                slot.source_id for slot in spot.reserved_slots
                if not slot.blocks(now) and first <= slot.start <= last
            }
            if not stale:
                return
            owners: Any = stale
        elif in_way is False:
            return
        else:
            owners = select(ReservedSlot.source_id).where(
                ReservedSlot.resource == spot.resource,
                ReservedSlot.start.between(first, last),
                ~ReservedSlot.blocking_at(now),
            ).scalar_subquery()
        self._delete_expired_holds(owners, now)
        if loaded:
            kept = [slot for slot in spot.reserved_slots if slot.blocks(now) or slot.source_id not in owners]
            set_committed_value(spot, 'reserved_slots', kept)

    def remove_expired_holds_on(self, spots: list[Allocation]) -> None:
        """Delete the holds that expired with a slot on one of the spots, whole
        (their slots on other spots too), before the spots' slots are moved:
        an expired hold blocks nobody, and its spot counts as free. Reads the
        spots' collections; issues the delete only if there is such a hold."""
        now = clock.now()
        stale = {
            slot.source_id for spot in spots if not spot.is_transient
            for slot in spot.reserved_slots if not slot.blocks(now)
        }
        if not stale:
            return
        self._delete_expired_holds(stale, now)
        for spot in spots:
            if not spot.is_transient:
                kept = [s for s in spot.reserved_slots if s.blocks(now) or s.source_id not in stale]
                set_committed_value(spot, 'reserved_slots', kept)

    def _delete_expired_holds(self, owners: Any, now: datetime) -> None:
        """The expired slots of these owners, in one ORM-enabled delete (the session sees it)."""
        self.scope.session.execute(
            delete(ReservedSlot).where(
                ReservedSlot.source_type == 'reservation',
                ReservedSlot.source_id.in_(owners),
                ~ReservedSlot.blocking_at(now),
            ),
            execution_options={'synchronize_session': 'fetch'},
        )

    def holds_of(self, rows: list[Reservation]) -> dict[int, list[ReservedSlot]]:
        """The slots of the rows' holds that are still there, by row id."""
        found: dict[int, list[ReservedSlot]] = {}
        query = select(ReservedSlot).where(
            ReservedSlot.source_type == 'reservation',
            ReservedSlot.source_id.in_([row.id for row in rows]),
            ReservedSlot.held_until.is_not(None),
        )
        for slot in self.scope.session.scalars(query):
            found.setdefault(slot.source_id, []).append(slot)
        return found

    def confirm_holds(self, rows: list[Reservation]) -> list[ReservedSlot]:
        """Approve held rows whose hold is still in place (expired or not:
        nobody has booked over it) by making their slots bookings; a row
        whose hold is gone stays pending without it, to be booked anew."""
        holds = self.holds_of(rows)
        confirmed = [row for row in rows if row.id in holds]
        for row in rows:
            row.held_until = None
            if row in confirmed:
                row.status = 'approved'
        if not confirmed:
            return []
        session = self.scope.session
        # The owners first: the slot check sees them approved.
        session.flush()
        session.execute(
            update(ReservedSlot).where(
                ReservedSlot.source_type == 'reservation',
                ReservedSlot.source_id.in_([row.id for row in confirmed]),
            ).values(held_until=None),
            execution_options={'synchronize_session': 'fetch'},
        )
        return [slot for row in confirmed for slot in holds[row.id]]

    def delete_each(self, query: Query[Any]) -> None:
        """Delete the rows one by one through the unit of work (no bulk
        statement, as libres 1.4.0), then flush."""
        session = self.scope.session
        for row in query:
            session.delete(row)
        session.flush()

    def reservation_dates(self, row: Reservation) -> list[DatePair]:
        """The dates a reservation row books: its span, or its group's allocations."""
        if row.target_type == 'group':
            return [(start, end) for start, end in self.records.allocation_dates_by_group(row.target)]
        if row.start is None or row.end is None:
            raise errors.LibresAssertionError(f'reservation {row.id} of one allocation has no span')
        return [(row.start, row.end)]

    def write_reservation(
        self, row: Reservation, source_id: int, held_until: datetime | None = None
    ) -> list[ReservedSlot]:
        """Approve a reservation row and take the slots of its dates and quota
        (the first free spot each time); on a refusal the row keeps its status.
        With ``held_until`` the row stays pending and its slots are a hold
        (the row must be written, held until then, first).

        Nothing is rolled back here: the caller wraps several rows in a
        savepoint."""
        dates = self.reservation_dates(row)
        self.spots.require_free_on_blocking_resources(dates, row.quota)
        # One query for every date; the slots taken below join the loaded
        # collections, so each later date and copy sees the earlier ones.
        masters = self.spots.masters_overlapping(dates)
        # Approved before its first slot: a flush on the way (a query's
        # autoflush) writes the owner before the slots, which the database
        # checks at the end of each statement.
        previous = row.status
        if held_until is None:
            row.status = 'approved'
        slots: list[ReservedSlot] = []
        try:
            for start, end in dates * row.quota:
                for target in self.spots.spots_among(masters, start, end):
                    slots.extend(self.take(
                        target, start, end, row.token, 'reservation', source_id, held_until
                    ))
            if not slots:
                raise errors.NotReservableError(
                    f'reservation {source_id} (token {row.token}) covers no free allocation'
                )
        except Exception:
            row.status = previous
            raise
        return slots
