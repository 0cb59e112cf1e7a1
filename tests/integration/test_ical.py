"""iCalendar feeds: parsed back with icalendar, UIDs stable across renders."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import icalendar
import pytest

from libres.context.core import Context
from libres.db.scheduler import Scheduler
from libres.ical import to_ical
from libres.modules.errors import ReservationParametersInvalid

DAY = datetime(2030, 10, 27)  # the autumn DST change in Zurich


def _events(feed: bytes) -> list[icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(feed)
    return [event for event in calendar.walk('VEVENT') if isinstance(event, icalendar.Event)]


def _fill(context: Context) -> tuple[Scheduler, Scheduler]:
    room = Scheduler(context, 'room', 'Europe/Zurich')
    nursery = Scheduler(context, 'nursery', 'Europe/Zurich')
    room.allocate((DAY.replace(hour=8), DAY.replace(hour=18)), partly_available=True, raster=30)
    approved = room.reserve('alice@example.org', (DAY.replace(hour=9), DAY.replace(hour=10, minute=30)))
    room.approve_reservations(approved)
    room.reserve('bob@example.org', (DAY.replace(hour=12), DAY.replace(hour=13)))
    room.add_blocker((DAY.replace(hour=16), DAY.replace(hour=17)), reason='cleaning')
    nursery.allocate((DAY + timedelta(days=1), DAY + timedelta(days=1)), whole_day=True, quota=3,
                     approve_manually=True)
    nursery.reserve('alice@example.org', (DAY + timedelta(days=1), DAY + timedelta(days=2)))
    room.session.flush()
    return room, nursery


def test_a_resource_feed_has_reservations_and_blockers(context: Context) -> None:
    room, _ = _fill(context)
    feed = to_ical(room, DAY, DAY + timedelta(days=7), name='Meeting room', refresh=timedelta(hours=1))
    calendar = icalendar.Calendar.from_ical(feed)
    assert str(calendar['x-wr-calname']) == str(calendar['name']) == 'Meeting room'
    assert calendar.decoded('refresh-interval') == timedelta(hours=1)
    assert str(calendar.decoded('x-published-ttl')) == 'PT1H'
    assert b'REFRESH-INTERVAL;VALUE=DURATION:PT1H' in feed
    events = _events(feed)
    summary = [(str(e['summary']), str(e['status']), e.decoded('dtstart'), e.decoded('dtend')) for e in events]
    assert [(s, st) for s, st, _, _ in summary] == [
        ('room: alice@example.org', 'CONFIRMED'),
        ('room: bob@example.org', 'TENTATIVE'),
        ('room: cleaning', 'CONFIRMED'),
    ]
    # 09:00 local on the day clocks go back is 08:00 UTC; the 1 µs is gone.
    first = summary[0]
    assert first[2].isoformat() == '2030-10-27T08:00:00+00:00'
    assert first[3].isoformat() == '2030-10-27T09:30:00+00:00'
    reservation = room.reservations_by_token(room.managed_reservations().filter_by(
        email='alice@example.org').one().token).one()
    assert str(events[0]['uid']) == f'{reservation.token}-{reservation.id}'
    room.rollback()


def test_uids_are_stable_across_renders_and_feeds(context: Context) -> None:
    room, nursery = _fill(context)
    window = (DAY, DAY + timedelta(days=7))
    once = [str(e['uid']) for e in _events(to_ical(room, *window))]
    twice = [str(e['uid']) for e in _events(to_ical(room, *window))]
    assert once == twice and len(set(once)) == 3
    mine = _events(to_ical([room, nursery], *window, email='alice@example.org'))
    assert {str(e['uid']) for e in mine} <= set(once) | {
        str(e['uid']) for e in _events(to_ical(nursery, *window))}
    assert len(mine) == 2
    # Approving changes the status, not the UID.
    token = nursery.managed_reservations().one().token
    nursery.approve_reservations(token)
    after = _events(to_ical([room, nursery], *window, email='alice@example.org'))
    assert [str(e['uid']) for e in after] == [str(e['uid']) for e in mine]
    assert [str(e['status']) for e in after] == ['CONFIRMED', 'CONFIRMED']
    room.rollback()


def test_whole_days_are_dates_with_an_exclusive_local_end(context: Context) -> None:
    _, nursery = _fill(context)
    [event] = _events(to_ical(nursery, DAY, DAY + timedelta(days=7)))
    assert event.decoded('dtstart') == date(2030, 10, 28)
    assert event.decoded('dtend') == date(2030, 10, 29)
    assert str(event['status']) == 'TENTATIVE'
    nursery.rollback()


def test_free_allocations_on_request_and_bad_arguments(context: Context) -> None:
    room, nursery = _fill(context)
    events = _events(to_ical([room, nursery], DAY, DAY + timedelta(days=7), include=('allocations',)))
    assert [str(e['summary']) for e in events] == ['room: free (1 of 1)', 'nursery: free (3 of 3)']
    assert all(str(e['transp']) == 'TRANSPARENT' for e in events)
    with pytest.raises(ReservationParametersInvalid):
        to_ical(room, DAY, DAY, include=('reservations',))
    with pytest.raises(ReservationParametersInvalid):
        to_ical(room, DAY, DAY + timedelta(days=1), include=('everything',))
    with pytest.raises(ReservationParametersInvalid):
        to_ical(room, DAY, DAY + timedelta(days=1), refresh=timedelta(0))
    room.rollback()
