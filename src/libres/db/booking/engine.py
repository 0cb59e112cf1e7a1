"""The booking engine of one scope: its parts, wired once.

``records`` (the record queries), ``dates`` (reading and checking dates),
``spots`` (the free-spot rule and the masters a booking meets) and
``slots`` (writing and removing slot rows). The public ``Scheduler`` holds
one engine for itself; ``libres check --repair`` builds one for a resource.
"""

from __future__ import annotations

from dataclasses import dataclass

from libres.db.booking.dates import BookingDates
from libres.db.booking.scope import BookingScope
from libres.db.booking.slots import Slots
from libres.db.booking.spots import Spots
from libres.db.records import Records


@dataclass(frozen=True)
class Engine:
    """The parts of the booking engine, sharing one scope."""

    records: Records
    dates: BookingDates
    spots: Spots
    slots: Slots

    @classmethod
    def for_scope(cls, scope: BookingScope) -> Engine:
        records = Records(scope)
        dates = BookingDates(scope, records)
        spots = Spots(scope, records, dates)
        return cls(records, dates, spots, Slots(scope, records, spots))
