"""Booking policies: the buffers around a booking, the booking window, and holds.

An allocation may keep ``buffer_before`` and ``buffer_after`` free around
every booking of it (cleaning, changeover): a booking *occupies* its own
time and the buffers, clipped to the allocation, on the same spot
(:func:`occupied`), so a buffer never meets a booking or another buffer
(the slots' primary key). Buffers apply to partly available allocations
only: a whole allocation has no time around its booking.

It may also have a booking window: a booking starts at least
``min_notice`` and at most ``max_advance`` from now
(:func:`require_in_window`, against ``libres.modules.clock``), where its
first slot starts (:func:`booked_start`).

A reservation made with a hold (``reserve(..., hold=...)``) takes its
slots while pending, until ``now + hold`` (:func:`checked_hold`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from libres.db.booking.dates import DatePair
from libres.db.models import Allocation
from libres.modules import errors

MAX_HOLD = timedelta(days=1)
NO_TIME = timedelta(0)


@dataclass(frozen=True)
class Policies:
    """The policy columns of an allocation (None: no such policy)."""

    buffer_before: timedelta | None = None
    buffer_after: timedelta | None = None
    min_notice: timedelta | None = None
    max_advance: timedelta | None = None

    def columns(self) -> dict[str, timedelta | None]:
        return {
            'buffer_before': self.buffer_before, 'buffer_after': self.buffer_after,
            'min_notice': self.min_notice, 'max_advance': self.max_advance,
        }


def _duration(value: Any, name: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise errors.InvalidArgumentType(f'{name} must be a timedelta or None, got {value!r}')
    if value < NO_TIME:
        raise errors.InvalidArgument(f'{name} must not be negative, got {value}')
    return value


def checked_policies(
    buffer_before: Any, buffer_after: Any, min_notice: Any, max_advance: Any,
    raster: int, partly_available: bool,
) -> Policies:
    """The policies of new allocations, or a clear error (nothing is written)."""
    buffers: dict[str, timedelta | None] = {}
    for name, value in (('buffer_before', buffer_before), ('buffer_after', buffer_after)):
        duration = _duration(value, name)
        if not duration:
            buffers[name] = None  # a zero buffer is no buffer
            continue
        if not partly_available:
            raise errors.InvalidArgument(
                f'{name} needs a partly available allocation: a whole one has no time around its booking'
            )
        if duration % timedelta(minutes=raster):
            raise errors.InvalidArgument(
                f'{name} of {duration} is not on the raster of {raster} minutes'
            )
        buffers[name] = duration
    notice = _duration(min_notice, 'min_notice')
    advance = _duration(max_advance, 'max_advance')
    if advance is not None and advance == NO_TIME:
        raise errors.InvalidArgument('max_advance must be positive: nothing could ever be booked')
    if notice is not None and advance is not None and notice > advance:
        raise errors.InvalidArgument(
            f'min_notice ({notice}) is above max_advance ({advance}): nothing could ever be booked'
        )
    return Policies(buffers['buffer_before'], buffers['buffer_after'], notice, advance)


def checked_hold(hold: Any) -> timedelta | None:
    """A hold between a moment and a day, or None."""
    if hold is None:
        return None
    if not isinstance(hold, timedelta):
        raise errors.InvalidArgumentType(f'hold must be a timedelta or None, got {hold!r}')
    if hold <= NO_TIME or hold > MAX_HOLD:
        raise errors.InvalidArgument(f'a hold lasts more than nothing and at most a day, got {hold}')
    return hold


def has_buffers(allocation: Allocation) -> bool:
    return allocation.partly_available and bool(allocation.buffer_before or allocation.buffer_after)


def occupied(
    allocation: Allocation, start: datetime, end: datetime, within: DatePair | None = None
) -> DatePair:
    """What a booking of ``[start, end]`` takes on its spot: the range and its
    buffers, clipped to the allocation (or to the span ``within`` it is
    about to have)."""
    if not has_buffers(allocation):
        return start, end
    first, last = within or (allocation._start, allocation._end)
    return (
        max(start - (allocation.buffer_before or NO_TIME), first),
        min(end + (allocation.buffer_after or NO_TIME), last),
    )


def booked_start(allocation: Allocation, start: datetime, end: datetime) -> datetime:
    """When a booking asked for ``[start, end]`` begins: at its first slot,
    the start on the raster, or the allocation's start if it is booked whole.
    The window is checked there: two requests that book the same slots get
    the same answer."""
    return next(iter(allocation.all_slots(start, end)))[0]


def require_in_window(allocation: Allocation, start: datetime, now: datetime, zone: str) -> None:
    """``OutsideBookingWindow`` unless a booking starting at ``start`` may be made at ``now``."""
    notice, advance = allocation.min_notice, allocation.max_advance
    earliest = now + notice if notice is not None else None
    latest = now + advance if advance is not None else None
    if (earliest is None or start >= earliest) and (latest is None or start <= latest):
        return
    first = errors.describe_moment(earliest, zone) if earliest is not None else None
    last = errors.describe_moment(latest, zone) if latest is not None else None
    if first and last:
        bounds = f'between {first} and {last}'
    else:
        bounds = f'from {first} on' if first else f'until {last}'
    raise errors.OutsideBookingWindow(
        f'{errors.describe_moment(start, zone)} is outside the booking window of allocation '
        f'{allocation.id}: it may be booked {bounds}',
        earliest=earliest, latest=latest,
    )
