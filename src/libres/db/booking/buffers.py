"""The buffer slots of an allocation whose span changes.

A booking's buffers are clipped to its allocation (``policies.occupied``).
When ``move_allocation`` gives the allocation a new span, each booking
keeps its own slots (they must lie inside the new span) and its buffers
follow the new edges: a buffer slot now outside is deleted, one that was
clipped before and now fits is added. Added buffer time lies only in the
part of the span that is new, where no slot can be, so nothing collides.

The deletions are flushed before the span changes (the database checks
that an allocation contains its slots at the end of each statement); the
additions are written with the span, owners and hold copied from the
booking's own slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from libres.db.booking.dates import DatePair
from libres.db.booking.policies import has_buffers, occupied
from libres.db.models import Allocation, ReservedSlot
from libres.modules.rasterizer import iterate_span

_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass
class BufferChange:
    """What moving one spot to a new span does to its buffer slots."""

    spot: Allocation
    stale: list[ReservedSlot]
    added: list[ReservedSlot]


def _bookings(spot: Allocation) -> list[list[ReservedSlot]]:
    """The booked (non-buffer) slots of each reservation on the spot, each a
    run of consecutive slots, in order."""
    runs: dict[tuple[int, datetime], list[ReservedSlot]] = {}
    last_of: dict[int, list[ReservedSlot]] = {}
    for slot in sorted(spot.reserved_slots, key=lambda s: s.start):
        if slot.buffer or slot.source_type != 'reservation':
            continue
        run = last_of.get(slot.source_id)
        if run is not None and slot.start == run[-1].end + _ONE_MICROSECOND:
            run.append(slot)
            continue
        run = last_of[slot.source_id] = runs[slot.source_id, slot.start] = [slot]
    return list(runs.values())


def _buffer_slot(booking: ReservedSlot, start: datetime, end: datetime) -> ReservedSlot:
    return ReservedSlot(
        start=start, end=end, resource=booking.resource,
        reservation_token=booking.reservation_token, source_type=booking.source_type,
        source_id=booking.source_id, held_until=booking.held_until, buffer=True,
    )


def change_for(spot: Allocation, span: DatePair) -> BufferChange | None:
    """The buffer slots to delete and to add when the spot spans ``span``;
    None if the spot has no buffers or its span does not change."""
    if spot.is_transient or not has_buffers(spot) or (spot._start, spot._end) == span:
        return None
    wanted: dict[datetime, ReservedSlot] = {}
    for run in _bookings(spot):
        first, last = run[0], run[-1]
        start, end = occupied(spot, first.start, last.end, within=span)
        booked = {slot.start for slot in run}
        for slot_start, slot_end in iterate_span(start, end, spot.raster):
            if slot_start not in booked:
                wanted[slot_start] = _buffer_slot(first, slot_start, slot_end)
    present = {slot.start: slot for slot in spot.reserved_slots if slot.buffer}
    stale = [slot for start, slot in present.items() if start not in wanted]
    added = [slot for start, slot in wanted.items() if start not in present]
    return BufferChange(spot, stale, added) if stale or added else None


def delete_stale(session: Session, changes: list[BufferChange]) -> None:
    """Delete the buffer slots the new spans leave outside (taken out of
    the spot's collection: the unit of work deletes orphans), and flush:
    before the spans change."""
    for change in changes:
        for slot in change.stale:
            change.spot.reserved_slots.remove(slot)
    if any(change.stale for change in changes):
        session.flush()


def add_new(changes: list[BufferChange]) -> None:
    """Add the buffer slots the new spans make room for (flushed after the
    spans: the unit of work writes an allocation before its slots)."""
    for change in changes:
        change.spot.reserved_slots.extend(change.added)
