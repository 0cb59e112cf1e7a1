"""The bookable time of one resource, for screens: free intervals in local time.

One statement asks PostgreSQL for every raster slot of the resource's master
allocations that overlaps the window and still has a free spot, together with
the spots taken on it (the master and its mirrors) and, per overlapping
allocation of a blocking resource, the spots taken there. Python then merges
adjacent slots of one allocation into intervals.

A slot is free the way ``reserve`` + ``approve_reservations`` judge it: a spot
(the master or one of its mirrors) is taken on a slot when one of its reserved
slots starts there (blockers take every spot); a blocking resource's
allocation overlapping the slot must have a spot free over that time too.

Merging keeps a promise: a reservation of ``spots`` spots fits anywhere
inside an interval, also across its whole length. So adjacent slots are
merged only while the spots free *throughout* stay as many as on each slot
alone; where bookings of a quota shift from one spot to another, an interval
ends and the next begins, even if both have as many free spots.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect
from sqlalchemy.types import DateTime, Integer

from libres.db.sql import free_intervals as sql
from libres.modules import clock
from libres.modules.dates import get_timezone
from libres.modules.errors import ReservationParametersInvalid

if TYPE_CHECKING:
    from libres.db.scheduler.base import SchedulerBase

_COLUMNS: dict[str, Any] = {
    'id': Integer, 'slot_start': DateTime, 'slot_end': DateTime, 'quota': Integer,
    'taken': ARRAY(Integer), 'blocking': JSONB,
}
_WITHOUT_BLOCKING: TextualSelect = text(sql.WITHOUT_BLOCKING).columns(**_COLUMNS)
_WITH_BLOCKING: TextualSelect = text(sql.WITH_BLOCKING).columns(**_COLUMNS)


@dataclass(frozen=True)
class FreeInterval:
    """Bookable time on one allocation: ``[start, end)`` in the scheduler's
    zone, on the allocation's raster, with ``spots`` spots free throughout
    (a reservation may ask for that many; ``quota_limit`` still applies)."""

    start: datetime
    end: datetime
    allocation_id: int
    spots: int

    @property
    def duration(self) -> timedelta:
        """Elapsed time (across a DST change an hour more or less than the wall clock)."""
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``start``/``end`` ISO 8601 with offset,
        ``allocation_id`` and ``spots`` integers."""
        return {
            'start': self.start.isoformat(),
            'end': self.end.isoformat(),
            'allocation_id': self.allocation_id,
            'spots': self.spots,
        }


@dataclass(frozen=True)
class FreeSlot:
    """One raster slot with a free spot, as the query returns it (UTC)."""

    allocation_id: int
    start: datetime
    end: datetime
    quota: int
    taken: frozenset[int]
    # Per overlapping allocation of a blocking resource: (quota, spots taken).
    blocking: dict[int, tuple[int, frozenset[int]]] = field(default_factory=dict)

    @property
    def spots(self) -> int:
        return spots_left(self.quota, self.taken, self.blocking)


def spots_left(quota: int, taken: frozenset[int], blocking: dict[int, tuple[int, frozenset[int]]]) -> int:
    """Spots free on the own allocation and on every blocking one."""
    free = quota - len(taken)
    for blocking_quota, blocking_taken in blocking.values():
        free = min(free, blocking_quota - len(blocking_taken))
    return max(free, 0)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def free_slots(
    session: Session,
    resource: uuid.UUID,
    blocking_resources: Iterable[uuid.UUID],
    start: datetime,
    end: datetime,
) -> list[FreeSlot]:
    """Every free raster slot of the resource's masters overlapping
    ``[start, end)`` (aware datetimes), ordered by allocation and start."""
    blocking = [str(b) for b in blocking_resources]
    params: dict[str, Any] = {
        'resource': str(resource),
        'start': start.astimezone(UTC).replace(tzinfo=None),
        'end': end.astimezone(UTC).replace(tzinfo=None),
        'now': clock.now().replace(tzinfo=None),
    }
    if blocking:
        params['blocking'] = blocking
    rows = session.execute(_WITH_BLOCKING if blocking else _WITHOUT_BLOCKING, params)
    return [
        FreeSlot(
            allocation_id=row.id,
            start=_utc(row.slot_start),
            end=_utc(row.slot_end),
            quota=row.quota,
            taken=frozenset(row.taken),
            blocking={entry[0]: (entry[1], frozenset(entry[2])) for entry in row.blocking or ()},
        )
        for row in rows
    ]


def merge(slots: Sequence[FreeSlot], zone: tzinfo, duration: timedelta | None = None) -> list[FreeInterval]:
    """Adjacent slots of one allocation as intervals (see the module's
    docstring for when they merge), in ``zone``, ordered by start."""
    intervals = [
        FreeInterval(first.start.astimezone(zone), last_end.astimezone(zone), first.allocation_id, spots)
        for first, last_end, spots in _runs(slots)
    ]
    if duration is not None:
        intervals = [i for i in intervals if i.duration >= duration]
    intervals.sort(key=lambda i: (i.start, i.allocation_id))
    return intervals


def _runs(slots: Sequence[FreeSlot]) -> Iterator[tuple[FreeSlot, datetime, int]]:
    """(first slot, end, spots) of each run of mergeable slots."""
    first: FreeSlot | None = None
    run_end = datetime.min
    run_spots = 0
    taken: frozenset[int] = frozenset()
    blocking: dict[int, tuple[int, frozenset[int]]] = {}
    for slot in slots:
        if first is not None and slot.allocation_id == first.allocation_id and slot.start == run_end:
            joined_taken = taken | slot.taken
            joined_blocking = dict(blocking)
            for key, (quota, spots_taken) in slot.blocking.items():
                previous = joined_blocking.get(key, (quota, frozenset()))[1]
                joined_blocking[key] = (quota, previous | spots_taken)
            joined_spots = spots_left(first.quota, joined_taken, joined_blocking)
            if slot.spots == run_spots == joined_spots:
                taken, blocking, run_end = joined_taken, joined_blocking, slot.end
                continue
        if first is not None:
            yield first, run_end, run_spots
        first, run_end, run_spots = slot, slot.end, slot.spots
        taken, blocking = slot.taken, dict(slot.blocking)
    if first is not None:
        yield first, run_end, run_spots


def free_intervals_of(
    scheduler: SchedulerBase[Any, Any], start: datetime, end: datetime, duration: timedelta | None = None
) -> list[FreeInterval]:
    """``Scheduler.free_intervals``: naive ``start``/``end`` are in the
    scheduler's zone; allocations the context's exposure hides are left out."""
    utc_start, utc_end = scheduler._prepare_date(start), scheduler._prepare_date(end)
    if utc_end <= utc_start:
        raise ReservationParametersInvalid('the window must end after it starts')
    if duration is not None and (not isinstance(duration, timedelta) or duration <= timedelta(0)):
        raise ReservationParametersInvalid('duration must be a positive timedelta')
    slots = free_slots(
        scheduler.session, scheduler.resource, sorted(scheduler.blocking_resources), utc_start, utc_end
    )
    if slots and not scheduler.exposes_everything():
        ids = {slot.allocation_id for slot in slots}
        exposed = {a.id for a in scheduler.allocations_by_ids(ids) if scheduler.is_allocation_exposed(a)}
        slots = [slot for slot in slots if slot.allocation_id in exposed]
    return merge(slots, get_timezone(scheduler.timezone), duration)
