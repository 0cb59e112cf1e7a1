"""iCalendar feeds of reservations, blockers and free time (``libres[ical]``).

``to_ical(scheduler, start, end)`` renders one resource (or several, given an
iterable of schedulers) as an RFC 5545 calendar that calendar applications
subscribe to::

    from libres.ical import to_ical

    feed = to_ical(room, datetime(2030, 5, 1), datetime(2030, 6, 1), name='Meeting room')
    feed = to_ical(room, start, end, email='alice@example.org')   # her own feed

Every event's UID is ``{token}-{id}`` of its reservation or blocker row (a
group reservation spanning several allocations adds ``-{n}`` from the second
one on), so a re-rendered feed updates events instead of duplicating them.
Times are UTC; whole days are ``DATE`` values in the resource's local time
with an exclusive end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_
from sqlalchemy.orm import undefer

from libres.context.replicas import replica_read
from libres.db.models import Allocation, Reservation, ReservationBlocker
from libres.modules.dates import is_whole_day, to_timezone
from libres.modules.errors import ReservationParametersInvalid

if TYPE_CHECKING:
    from libres.db.scheduler import Scheduler

try:
    import icalendar
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError("libres.ical needs the icalendar package: pip install 'libres[ical]'") from error

INCLUDABLE = ('reservations', 'blockers', 'allocations')
ONE_MICROSECOND = timedelta(microseconds=1)
PRODID = '-//libres//libres.ical//EN'
STATUS = {'pending': 'TENTATIVE', 'approved': 'CONFIRMED'}
Span = tuple[datetime, datetime]


def to_ical(
    scheduler: Scheduler | Iterable[Scheduler],
    start: datetime,
    end: datetime,
    include: Sequence[str] = ('reservations', 'blockers'),
    email: str | None = None,
    name: str | None = None,
    refresh: timedelta = timedelta(minutes=30),
) -> bytes:
    """The calendar of ``[start, end)`` as iCalendar bytes.

    ``include`` picks what becomes a ``VEVENT``: ``'reservations'`` (pending
    ones ``TENTATIVE``, approved ones ``CONFIRMED``), ``'blockers'``, and
    ``'allocations'`` (each allocation with a free spot left, ``TRANSPARENT``).
    ``email`` keeps only that person's reservations (a personal feed; it
    implies no blockers or free time). ``name`` is the calendar's name
    (default: the schedulers' names); ``refresh`` tells subscribers how often
    to reload (``REFRESH-INTERVAL`` and ``X-PUBLISHED-TTL``). Naive
    ``start``/``end`` are in the (first) scheduler's zone.
    """
    schedulers = _as_list(scheduler)
    unknown = set(include) - set(INCLUDABLE)
    if unknown:
        raise ReservationParametersInvalid(f'cannot include {sorted(unknown)}: choose from {INCLUDABLE}')
    if not isinstance(refresh, timedelta) or refresh <= timedelta(0):
        raise ReservationParametersInvalid('refresh must be a positive timedelta')
    first = schedulers[0]
    utc_start, utc_end = first._prepare_date(start), first._prepare_date(end)
    if utc_end <= utc_start:
        raise ReservationParametersInvalid('the feed must end after it starts')

    calendar = icalendar.Calendar()
    calendar.add('prodid', PRODID)
    calendar.add('version', '2.0')
    title = name or ', '.join(str(s.name) for s in schedulers)
    calendar.add('name', title)
    calendar.add('x-wr-calname', title)
    calendar.add('refresh-interval', refresh, parameters={'VALUE': 'DURATION'})
    calendar.add('x-published-ttl', icalendar.vDuration(refresh))

    events = _events(first, schedulers, utc_start, utc_end, include, email)
    events.sort(key=lambda e: (e.decoded('dtstart').isoformat(), str(e['uid'])))
    for event in events:
        calendar.add_component(event)
    feed: bytes = calendar.to_ical()
    return feed


@replica_read
def _events(
    first: Scheduler, schedulers: list[Scheduler], start: datetime, end: datetime,
    include: Sequence[str], email: str | None,
) -> list[icalendar.Event]:
    """Every event of the feed, read in one routed call: on a replica when
    the (first) scheduler's context names one (``read_dsn``)."""
    events: list[icalendar.Event] = []
    for each in schedulers:
        if 'reservations' in include or email is not None:
            events.extend(_reservation_events(each, start, end, email))
        if email is None and 'blockers' in include:
            events.extend(_blocker_events(each, start, end))
        if email is None and 'allocations' in include:
            events.extend(_allocation_events(each, start, end))
    return events


def _as_list(scheduler: Any) -> list[Scheduler]:
    from libres.db.scheduler import Scheduler

    schedulers = [scheduler] if isinstance(scheduler, Scheduler) else list(scheduler)
    if not schedulers:
        raise ReservationParametersInvalid('a feed needs at least one scheduler')
    return schedulers


def _event(uid: str, span: Span, zone: str, summary: str, stamp: datetime | None) -> icalendar.Event:
    event = icalendar.Event()
    event.add('uid', uid)
    event.add('dtstamp', (stamp or datetime(2000, 1, 1, tzinfo=UTC)).astimezone(UTC))
    start, end = span
    local_start, local_end = to_timezone(start, zone), to_timezone(end, zone)
    if is_whole_day(local_start, local_end, zone):
        end_day = local_end.date()
        if (local_end.hour, local_end.minute) != (0, 0):
            end_day += timedelta(days=1)
        event.add('dtstart', local_start.date())
        event.add('dtend', max(end_day, local_start.date() + timedelta(days=1)))
    else:
        event.add('dtstart', start.astimezone(UTC))
        event.add('dtend', end.astimezone(UTC))
    event.add('summary', summary)
    return event


def _spans(record: Any, masters_by_group: dict[uuid.UUID, list[Allocation]]) -> list[Span]:
    """The record's [start, end) spans: its own, or its group's allocations'."""
    if record.target_type == 'allocation':
        return [(record.start, record.end + ONE_MICROSECOND)]
    return [(a.start, a.end + ONE_MICROSECOND) for a in masters_by_group.get(record.target, [])]


def _uids(token: uuid.UUID, id: int, count: int) -> Iterator[str]:
    for index in range(count):
        yield f'{token}-{id}' if index == 0 else f'{token}-{id}-{index}'


def _in_window(model: Any, start: datetime, end: datetime) -> Any:
    return or_(
        and_(model.target_type == 'allocation', model.start < end, model.end >= start),
        model.target_type == 'group',
    )


def _group_masters(scheduler: Scheduler, groups: set[uuid.UUID], start: datetime, end: datetime
                   ) -> dict[uuid.UUID, list[Allocation]]:
    if not groups:
        return {}
    rows = scheduler.managed_allocations().filter(
        Allocation.group.in_(groups), Allocation.resource == Allocation.mirror_of,
        Allocation._start < end, Allocation._end >= start,
    ).order_by(Allocation._start)
    found: dict[uuid.UUID, list[Allocation]] = {}
    for allocation in rows:
        found.setdefault(allocation.group, []).append(allocation)
    return found


def _reservation_events(scheduler: Scheduler, start: datetime, end: datetime, email: str | None
                        ) -> Iterator[icalendar.Event]:
    query = scheduler.managed_reservations().filter(_in_window(Reservation, start, end)).options(
        undefer(Reservation.created), undefer(Reservation.modified)
    )
    if email is not None:
        query = query.filter(Reservation.email == email.strip())
    rows = query.order_by(Reservation.id).all()
    groups = {r.target for r in rows if r.target_type == 'group'}
    masters = _group_masters(scheduler, groups, start, end)
    for row in rows:
        spans = _spans(row, masters)
        zone = row.timezone or scheduler.timezone
        for uid, span in zip(_uids(row.token, row.id, len(spans)), spans):
            event = _event(uid, span, zone, f'{scheduler.name}: {row.title}', row.modified or row.created)
            event.add('status', STATUS.get(row.status, 'TENTATIVE'))
            event.add('categories', ['reservation'])
            event.add('x-libres-resource', scheduler.name)
            yield event


def _blocker_events(scheduler: Scheduler, start: datetime, end: datetime) -> Iterator[icalendar.Event]:
    rows = scheduler.managed_blockers().filter(_in_window(ReservationBlocker, start, end)).options(
        undefer(ReservationBlocker.created), undefer(ReservationBlocker.modified)
    ).order_by(ReservationBlocker.id).all()
    groups = {r.target for r in rows if r.target_type == 'group'}
    masters = _group_masters(scheduler, groups, start, end)
    for row in rows:
        spans = _spans(row, masters)
        zone = row.timezone or scheduler.timezone
        for uid, span in zip(_uids(row.token, row.id, len(spans)), spans):
            summary = f'{scheduler.name}: {row.reason or "blocked"}'
            event = _event(uid, span, zone, summary, row.modified or row.created)
            event.add('status', 'CONFIRMED')
            event.add('categories', ['blocker'])
            event.add('x-libres-resource', scheduler.name)
            yield event


def _allocation_events(scheduler: Scheduler, start: datetime, end: datetime) -> Iterator[icalendar.Event]:
    free = scheduler.free_intervals(start, end)
    spots: dict[int, int] = {}
    for interval in free:
        spots[interval.allocation_id] = max(spots.get(interval.allocation_id, 0), interval.spots)
    if not spots:
        return
    for allocation in scheduler.allocations_by_ids(spots).order_by(Allocation._start):
        span = (allocation.start, allocation.end + ONE_MICROSECOND)
        summary = f'{scheduler.name}: free ({spots[allocation.id]} of {allocation.quota})'
        event = _event(f'{allocation.group}-{allocation.id}', span, allocation.timezone or scheduler.timezone,
                       summary, None)
        event.add('transp', 'TRANSPARENT')
        event.add('categories', ['allocation'])
        event.add('x-libres-resource', scheduler.name)
        yield event

