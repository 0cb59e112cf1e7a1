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

from sqlalchemy.orm import Query

from libres.db.booking.dates import DatePair
from libres.db.booking.scope import BookingScope
from libres.db.booking.spots import Spots
from libres.db.models import Allocation, Reservation, ReservedSlot
from libres.db.models.reserved_slot import SourceType
from libres.db.records import Records
from libres.modules import errors


class Slots:
    """Takes and frees the slots of one scope."""

    def __init__(self, scope: BookingScope, records: Records, spots: Spots) -> None:
        self.scope = scope
        self.records = records
        self.spots = spots

    def take(
        self, spot: Allocation, start: datetime, end: datetime,
        token: uuid.UUID, source_type: SourceType, source_id: int,
    ) -> list[ReservedSlot]:
        """Write the slots of [start, end] on one spot (master or mirror); an
        imaginary mirror becomes a real row."""
        session = self.scope.session
        if spot.is_transient:
            session.add(spot)
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
                session.add(slot)
            else:
                # Queued on the unloaded collection without loading it.
                slot.allocation = spot
                session.add(slot)
            slots.append(slot)
        return slots

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

    def write_reservation(self, row: Reservation, source_id: int) -> list[ReservedSlot]:
        """Approve a reservation row and take the slots of its dates and quota
        (the first free spot each time); on a refusal the row keeps its status.

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
        previous, row.status = row.status, 'approved'
        slots: list[ReservedSlot] = []
        try:
            for start, end in dates * row.quota:
                for target in self.spots.spots_among(masters, start, end):
                    slots.extend(self.take(target, start, end, row.token, 'reservation', source_id))
            if not slots:
                raise errors.NotReservableError(
                    f'reservation {source_id} (token {row.token}) covers no free allocation'
                )
        except Exception:
            row.status = previous
            raise
        return slots
