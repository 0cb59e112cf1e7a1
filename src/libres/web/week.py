"""What the week view shows: allocations, free times and bookings of one week."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import undefer

from libres.context.replicas import replica_read
from libres.db.free_intervals import FreeInterval
from libres.db.models import Allocation, Reservation, ReservationBlocker
from libres.db.scheduler import Scheduler
from libres.modules.dates import get_timezone, localize

ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Bookable:
    """One button of the week view: a free hour (or a whole free allocation)."""

    start: datetime
    end: datetime
    allocation_id: int
    spots: int

    @property
    def key(self) -> str:
        return self.start.strftime('%Y-%m-%dT%H%M')

    @property
    def label(self) -> str:
        if self.end - self.start >= timedelta(hours=23):
            return f'{self.start:%a %d %b}, whole day'
        return f'{self.start:%a %d %b %H:%M}–{self.end:%H:%M}'


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_bounds(scheduler: Scheduler, monday: date) -> tuple[datetime, datetime]:
    zone = get_timezone(scheduler.timezone)
    start = localize(datetime.combine(monday, time()), zone)
    return start, localize(datetime.combine(monday + timedelta(days=7), time()), zone)


def bookable_hours(intervals: list[FreeInterval], whole: set[int]) -> list[Bookable]:
    """Free intervals cut into whole local hours; an allocation that is booked
    only as a whole stays one button."""
    found: list[Bookable] = []
    for interval in intervals:
        if interval.allocation_id in whole:
            found.append(Bookable(interval.start, interval.end, interval.allocation_id, interval.spots))
            continue
        zone = interval.start.tzinfo
        assert zone is not None
        hour = interval.start.replace(minute=0, second=0, microsecond=0)
        if hour < interval.start:
            hour += timedelta(hours=1)
        while True:
            # Step in local wall time; skip the hour a spring change removes.
            next_hour = localize(hour.replace(tzinfo=None) + timedelta(hours=1), zone)
            if next_hour > interval.end:
                break
            found.append(Bookable(hour, next_hour, interval.allocation_id, interval.spots))
            hour = next_hour
    return found


@replica_read
def calendar_events(
    scheduler: Scheduler, start: datetime, end: datetime, intervals: list[FreeInterval]
) -> list[dict[str, Any]]:
    """Events for the calendar widget (EventCalendar's event objects), read
    in one routed call: on a replica when the context names one."""
    events: list[dict[str, Any]] = []
    allocations = scheduler.allocations_in_range(start, end).order_by(Allocation._start).all()
    for allocation in allocations:
        events.append({
            'start': _local(allocation.display_start()), 'end': _local(allocation.display_end()),
            'display': 'background', 'color': '#e8eef7',
            'allDay': allocation.whole_day,
        })
    whole = {a.id for a in allocations if a.whole_day}
    for interval in intervals:
        events.append({
            'id': f'free-{interval.allocation_id}-{interval.start:%Y%m%d%H%M}',
            'start': _local(interval.start), 'end': _local(interval.end),
            'title': f'free ({interval.spots})' if interval.spots > 1 else 'free',
            'color': '#2e9e5b', 'allDay': interval.allocation_id in whole,
            'extendedProps': {'kind': 'free'},
        })
    reservations = scheduler.managed_reservations().filter(
        Reservation.start < end, Reservation.end >= start
    ).options(undefer(Reservation.data)).all()
    for reservation in reservations:
        entry = reservation.as_dict()
        events.append({
            'id': f'reservation-{reservation.id}',
            'start': _strip(entry['start']), 'end': _strip(entry['end']),
            'title': f'{reservation.email}' + (' (waiting)' if reservation.status == 'pending' else ''),
            'color': '#c77700' if reservation.status == 'pending' else '#b3261e',
            'allDay': reservation.display_end() - reservation.display_start() >= timedelta(hours=23),
            'extendedProps': {'kind': reservation.status},
        })
    for blocker in scheduler.managed_blockers().filter(
        ReservationBlocker.start < end, ReservationBlocker.end >= start
    ).all():
        entry = blocker.as_dict()
        if entry['start'] is None:
            continue
        events.append({
            'id': f'blocker-{blocker.id}', 'start': _strip(entry['start']), 'end': _strip(entry['end']),
            'title': blocker.reason or 'blocked', 'color': '#6b6b6b',
            'extendedProps': {'kind': 'blocker'},
        })
    return events


def _local(value: datetime) -> str:
    """Wall-clock time without offset: the widget draws it as given."""
    return value.strftime('%Y-%m-%dT%H:%M:%S')


def _strip(iso: str | None) -> str | None:
    return None if iso is None else iso[:19]
