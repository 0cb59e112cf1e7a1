"""The booking engine of one scope: its parts, wired once.

``records`` (the record queries), ``dates`` (reading and checking dates),
``spots`` (the free-spot rule and the masters a booking meets) and
``slots`` (writing and removing slot rows). The public ``Scheduler`` holds
one engine for itself; ``libres check --repair`` builds one for a resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic

from libres.db.booking.dates import BookingDates
from libres.db.booking.scope import BookingScope
from libres.db.booking.slots import Slots
from libres.db.booking.spots import Spots
from libres.db.records import AllocationT, Records, ReservationT


@dataclass(frozen=True)
class Engine(Generic[AllocationT, ReservationT]):
    """The parts of the booking engine, sharing one scope."""

    records: Records[AllocationT, ReservationT]
    dates: BookingDates
    spots: Spots
    slots: Slots

    @classmethod
    def for_scope(cls, scope: BookingScope) -> Engine[Any, Any]:
        records: Records[Any, Any] = Records(scope)
        dates = BookingDates(scope, records)
        spots = Spots(scope, records, dates)
        return cls(records, dates, spots, Slots(scope, records, spots))
